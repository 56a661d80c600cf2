"""Which configured provider serves a model, and under what upstream name."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from tollhouse.settings import ProviderSettings


@dataclass(frozen=True, slots=True)
class Route:
    """One way to serve a request: this provider, asked for this model."""

    provider: ProviderSettings
    upstream_model: str


class ProviderRegistry:
    """Matches a requested model to providers, in config order (the order is the fallback order).

    ``openrouter/meta-llama/llama-3`` goes to the provider whose prefix (or name) is
    ``openrouter`` and is sent upstream as ``meta-llama/llama-3``; any other name goes to every
    provider with a matching exact name or glob in ``models``.
    """

    def __init__(self, providers: tuple[ProviderSettings, ...]) -> None:
        self._providers = providers
        self._by_prefix = {p.routing_prefix: p for p in providers}
        self._memo: dict[str, tuple[Route, ...]] = {}

    @property
    def providers(self) -> tuple[ProviderSettings, ...]:
        return self._providers

    def routes(self, model: str) -> tuple[Route, ...]:
        try:
            return self._memo[model]
        except KeyError:
            pass
        found: list[Route] = []
        head, sep, rest = model.partition("/")
        prefixed = self._by_prefix.get(head) if sep else None
        if prefixed is not None and rest:
            found.append(Route(prefixed, rest))
        for provider in self._providers:
            if provider is prefixed:
                continue
            if any(pattern == model or fnmatch.fnmatchcase(model, pattern) for pattern in provider.models):
                found.append(Route(provider, model))
        routes = tuple(found)
        if len(self._memo) < 10_000:
            self._memo[model] = routes
        return routes

    def listed_models(self) -> list[tuple[str, str]]:
        """(model, provider) for every non-glob model name in config, for ``GET /v1/models``."""
        out = []
        for provider in self._providers:
            for pattern in provider.models:
                if not any(ch in pattern for ch in "*?["):
                    out.append((pattern, provider.name))
        return out
