"""Seed 001's auto-routing: pick a model for a call that names none, and say why.

The order is the seed's: a low budget forces the cheap model, a large context needs the
long-context model, a short prompt with a simple keyword goes cheap, complex keywords go to the
mid model, and everything else gets the default. Thresholds and keyword lists come from
``[routing]``; the result names the configured choice (``haiku``) so ``POST /v1/route`` reads
like the seed, and the resolver maps it to a real model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tollhouse.gateway.estimate import prompt_tokens
from tollhouse.routing.config import RoutingSettings


@dataclass(frozen=True, slots=True)
class BudgetView:
    """What the budget service knows about a project's remaining allowance (either may be unknown)."""

    remaining_tokens: int | None = None
    remaining_nanos: int | None = None


@dataclass(frozen=True, slots=True)
class AutoPick:
    choice: str  # as configured, e.g. "haiku"
    reasoning: str
    rule: str  # low_budget | long_context | simple | complex | default


def _keyword_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    cleaned = sorted({w.strip().lower() for w in words if w.strip()}, key=len, reverse=True)
    if not cleaned:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in cleaned) + r")\b", re.IGNORECASE)


def last_user_text(body: Mapping[str, Any]) -> str:
    """The prompt as seed 001 means it: the last user turn's text (or a completion's prompt)."""
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return _text(message.get("content"))
    prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


class AutoRouter:
    def __init__(self, settings: RoutingSettings) -> None:
        self._settings = settings
        self._simple = _keyword_pattern(settings.simple_keywords)
        self._complex = _keyword_pattern(settings.complex_keywords)
        self._low_budget_nanos = round(settings.low_budget_usd * 1e9)

    @property
    def enabled(self) -> bool:
        return self._settings.enabled

    def context_tokens(self, body: dict[str, Any]) -> int:
        """Prompt estimate plus the requested output allowance (seed 001 uses ``max_tokens`` so)."""
        limit = body.get("max_tokens") or body.get("max_completion_tokens") or 0
        return prompt_tokens(body) + (limit if isinstance(limit, int) and limit > 0 else 0)

    def pick(self, prompt: str, context_tokens: int, budget: BudgetView | None = None) -> AutoPick:
        s = self._settings
        if budget is not None:
            if budget.remaining_tokens is not None and budget.remaining_tokens < s.low_budget_tokens:
                return AutoPick(
                    s.cheap_model,
                    f"Low budget ({budget.remaining_tokens} tokens remaining < {s.low_budget_tokens}) "
                    f"→ {s.cheap_model}",
                    "low_budget",
                )
            if budget.remaining_nanos is not None and budget.remaining_nanos < self._low_budget_nanos:
                return AutoPick(
                    s.cheap_model,
                    f"Low budget (${budget.remaining_nanos / 1e9:.4f} remaining < ${s.low_budget_usd}) "
                    f"→ {s.cheap_model}",
                    "low_budget",
                )
        if context_tokens > s.long_context_tokens:
            return AutoPick(
                s.long_context_model,
                f"Large context ({context_tokens} tokens > {s.long_context_tokens}) → {s.long_context_model}",
                "long_context",
            )
        if (
            len(prompt) < s.simple_max_chars
            and self._simple is not None
            and (hit := self._simple.search(prompt))
        ):
            return AutoPick(
                s.cheap_model,
                f"Simple prompt ({len(prompt)} chars, keyword '{hit.group(0).lower()}') → {s.cheap_model}",
                "simple",
            )
        if self._complex is not None and (hit := self._complex.search(prompt)):
            return AutoPick(
                s.mid_model,
                f"Complex reasoning keywords ('{hit.group(0).lower()}') with sufficient budget "
                f"→ {s.mid_model}",
                "complex",
            )
        default = s.default_model or s.mid_model
        return AutoPick(default, f"Medium complexity (no rule applies) → {default}", "default")
