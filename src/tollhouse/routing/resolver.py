"""Which model serves a call: alias, then override rules (first match wins), then auto-routing.

Pure and synchronous: it reads only the request and what it was built with, so the gateway
can call it on every request and ``POST /v1/route`` can explain the same decision. The common
case (no rule, a real model name) is a dict lookup and a memoised rule pre-filter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tollhouse.errors import MissingField
from tollhouse.gateway.estimate import prompt_tokens
from tollhouse.routing.auto import AutoPick, AutoRouter, BudgetView, last_user_text
from tollhouse.routing.config import (
    AUTO_MODEL,
    DEFAULT_ALIASES,
    OverridesSettings,
    RoutingSettings,
)
from tollhouse.routing.rules import CompiledRule, RequestFacts, compile_rules, normalise_model

if TYPE_CHECKING:
    from tollhouse.settings import Settings

_MEMO_LIMIT = 10_000  # model names come from callers: bound what we remember about them


@dataclass(frozen=True, slots=True)
class ResolveInput:
    model: str | None  # as the client sent it; None or "auto" asks for auto-routing
    project_id: str
    headers: Mapping[str, str]  # names lower-cased
    body: dict[str, Any]
    endpoint: str  # the route path, e.g. "/v1/messages"
    budget: BudgetView | None = None  # only auto-routing reads it


@dataclass(frozen=True, slots=True)
class Resolution:
    requested_model: str  # what the client asked for ("auto" when it named none)
    served_model: str  # the real model to send upstream
    rule_id: str | None  # the override rule that applied, if any
    reason: str
    auto: bool = False
    alias: str | None = None  # the alias that was expanded, if any

    @property
    def overridden(self) -> bool:
        return self.rule_id is not None


class ModelResolver:
    def __init__(
        self,
        *,
        aliases: Mapping[str, str] | None = None,
        overrides: OverridesSettings | None = None,
        routing: RoutingSettings | None = None,
    ) -> None:
        merged = {**DEFAULT_ALIASES, **(aliases or {})}
        self._aliases = {name.lower(): target for name, target in merged.items()}
        overrides = overrides or OverridesSettings()
        self._rules: tuple[CompiledRule, ...] = compile_rules(overrides.rules) if overrides.enabled else ()
        self.overrides_enabled = overrides.enabled
        self.rule_count = len(overrides.rules)
        self._auto = AutoRouter(routing or RoutingSettings())
        self._candidates: dict[tuple[str, str], tuple[CompiledRule, ...]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelResolver:
        """From the root ``Settings`` (imported for typing only: settings imports this package's config)."""
        return cls(aliases=settings.aliases, overrides=settings.overrides, routing=settings.routing)

    @property
    def auto_router(self) -> AutoRouter:
        return self._auto

    def expand_alias(self, model: str) -> str:
        return self._aliases.get(model.lower(), model)

    def resolve(self, request: ResolveInput) -> Resolution:
        requested = request.model or AUTO_MODEL
        is_auto = requested.lower() == AUTO_MODEL
        expanded = requested if is_auto else self.expand_alias(requested)
        alias = requested if expanded != requested else None
        if self._rules:
            rule = self._first_rule(requested, expanded, request)
            if rule is not None:
                served = self.expand_alias(rule.target)
                return Resolution(
                    requested, served, rule.id, f"override {rule.id}: {expanded} → {served}", False, alias
                )
        if is_auto:
            if not self._auto.enabled:
                raise MissingField("'model' is required (auto-routing is turned off)", param="model")
            pick = self.recommend(
                last_user_text(request.body), self._auto.context_tokens(request.body), request.budget
            )
            return Resolution(requested, self.expand_alias(pick.choice), None, pick.reasoning, True, None)
        reason = f"alias {requested} → {expanded}" if alias else "as requested"
        return Resolution(requested, expanded, None, reason, False, alias)

    def recommend(self, prompt: str, context_tokens: int, budget: BudgetView | None = None) -> AutoPick:
        """Seed 001's ``POST /v1/route``: the auto-routing decision for a bare prompt."""
        return self._auto.pick(prompt, context_tokens, budget)

    def _first_rule(self, requested: str, expanded: str, request: ResolveInput) -> CompiledRule | None:
        candidates = self._candidates.get((requested, expanded))
        if candidates is None:
            names = {normalise_model(requested), normalise_model(expanded)}
            candidates = tuple(r for r in self._rules if any(r.matches_model(n) for n in names))
            if len(self._candidates) < _MEMO_LIMIT:
                self._candidates[(requested, expanded)] = candidates
        if not candidates:
            return None
        memo: list[int] = []

        def tokens() -> int:
            if not memo:
                memo.append(prompt_tokens(request.body))
            return memo[0]

        facts = RequestFacts(request.project_id, request.endpoint, request.headers, request.body, tokens)
        for rule in candidates:
            if rule.matches_request(facts):
                return rule
        return None
