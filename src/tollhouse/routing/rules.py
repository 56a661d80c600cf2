"""Override rules compiled once at start: globs become regexes, conditions become cheap checks.

A rule is tested model-first, since that check is a memoised regex match, and the request
attributes that cost something (the prompt token estimate) are only computed when a rule
whose model matched asks for them.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tollhouse.routing.config import OverrideRule

_DOTTED_VERSION = re.compile(r"(?<=\d)\.(?=\d)")


def normalise_model(name: str) -> str:
    """``Claude-Sonnet-4.5`` and ``claude-sonnet-4-5`` are one model to a rule (and the price table)."""
    return _DOTTED_VERSION.sub("-", name.strip().lower())


def compile_glob(pattern: str, *, model: bool = False) -> re.Pattern[str]:
    text = normalise_model(pattern) if model else pattern.lower()
    return re.compile(fnmatch.translate(text))


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What a rule may look at. ``prompt_tokens`` is a callable so it is paid for only when asked."""

    project_id: str
    endpoint: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    prompt_tokens: Callable[[], int]


def has_tools(body: Mapping[str, Any]) -> bool:
    tools = body.get("tools") or body.get("functions")
    return isinstance(tools, list) and len(tools) > 0


def wants_thinking(body: Mapping[str, Any]) -> bool:
    """Anthropic ``thinking`` (enabled/adaptive) or OpenAI ``reasoning_effort``/``reasoning``."""
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled"):
        return True
    effort = body.get("reasoning_effort")
    if isinstance(effort, str) and effort not in ("none", "minimal"):
        return True
    reasoning = body.get("reasoning")
    return isinstance(reasoning, dict) and reasoning.get("effort") not in (None, "none", "minimal")


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    target: str
    model: re.Pattern[str]
    projects: tuple[re.Pattern[str], ...]
    endpoints: tuple[re.Pattern[str], ...]
    headers: tuple[tuple[str, re.Pattern[str]], ...]
    min_prompt_tokens: int | None
    max_prompt_tokens: int | None
    tools: bool | None
    thinking: bool | None

    @property
    def needs_prompt_tokens(self) -> bool:
        return self.min_prompt_tokens is not None or self.max_prompt_tokens is not None

    def matches_model(self, normalised_model: str) -> bool:
        return self.model.fullmatch(normalised_model) is not None

    def matches_request(self, facts: RequestFacts) -> bool:
        """Every condition but the model; the cheap ones first."""
        if self.projects and not _any(self.projects, facts.project_id.lower()):
            return False
        if self.endpoints and not _any(self.endpoints, facts.endpoint.lower()):
            return False
        for name, pattern in self.headers:
            value = facts.headers.get(name)
            if value is None or pattern.fullmatch(value.lower()) is None:
                return False
        if self.tools is not None and has_tools(facts.body) != self.tools:
            return False
        if self.thinking is not None and wants_thinking(facts.body) != self.thinking:
            return False
        if self.needs_prompt_tokens:
            tokens = facts.prompt_tokens()
            if self.min_prompt_tokens is not None and tokens <= self.min_prompt_tokens:
                return False
            if self.max_prompt_tokens is not None and tokens > self.max_prompt_tokens:
                return False
        return True


def _any(patterns: Sequence[re.Pattern[str]], value: str) -> bool:
    return any(p.fullmatch(value) is not None for p in patterns)


def compile_rules(rules: Sequence[OverrideRule]) -> tuple[CompiledRule, ...]:
    return tuple(
        CompiledRule(
            id=rule.id or f"rule-{position}",
            target=rule.to,
            model=compile_glob(rule.from_model, model=True),
            projects=tuple(compile_glob(p) for p in rule.projects),
            endpoints=tuple(compile_glob(e) for e in rule.endpoints),
            headers=tuple((name.lower(), compile_glob(value)) for name, value in rule.headers.items()),
            min_prompt_tokens=rule.min_prompt_tokens,
            max_prompt_tokens=rule.max_prompt_tokens,
            tools=rule.tools,
            thinking=rule.thinking,
        )
        for position, rule in enumerate(rules, start=1)
    )
