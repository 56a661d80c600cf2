"""The price table: a bundled snapshot of the public LiteLLM price map, plus local overrides.

Nothing is fetched at start-up. Lookups are memoised, so the gateway's hot path pays a dict get.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from tollhouse.pricing.snapshot import SNAPSHOT

_TIERS = ("batches", "priority", "flex")
_DATE_SUFFIX = re.compile(r"[-@](\d{8}|\d{4}-\d{2}-\d{2}|v\d+(:\d+)?)$")
_DOTTED_VERSION = re.compile(r"(?<=\d)\.(?=\d)")


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    # str() first: Decimal(0.1) would carry the float's binary error into every cost.
    return Decimal(str(value))


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per token for one model. ``None`` means the table does not say."""

    name: str
    provider: str | None
    mode: str | None
    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write_5m: Decimal | None = None
    cache_write_1h: Decimal | None = None
    input_above_200k: Decimal | None = None
    output_above_200k: Decimal | None = None
    cache_read_above_200k: Decimal | None = None
    cache_write_5m_above_200k: Decimal | None = None
    cache_write_1h_above_200k: Decimal | None = None
    max_input_tokens: int | None = None
    # Service-tier prices: {"batches": {"input": .., "output": .., ...}, "priority": ..., "flex": ...}
    tiers: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)

    @property
    def has_long_context_tier(self) -> bool:
        return self.input_above_200k is not None or self.output_above_200k is not None

    @classmethod
    def from_entry(cls, name: str, entry: Mapping[str, Any]) -> ModelPrice:
        tiers: dict[str, dict[str, Decimal]] = {}
        for tier in _TIERS:
            prices = {
                kind: _dec(entry.get(f"{base}_{tier}"))
                for kind, base in (
                    ("input", "input_cost_per_token"),
                    ("output", "output_cost_per_token"),
                    ("cache_read", "cache_read_input_token_cost"),
                    ("cache_write_5m", "cache_creation_input_token_cost"),
                )
            }
            present = {k: v for k, v in prices.items() if v is not None}
            if present:
                tiers[tier] = present
        return cls(
            name=name,
            provider=entry.get("litellm_provider"),
            mode=entry.get("mode"),
            input=_dec(entry.get("input_cost_per_token")) or Decimal(0),
            output=_dec(entry.get("output_cost_per_token")) or Decimal(0),
            cache_read=_dec(entry.get("cache_read_input_token_cost")),
            cache_write_5m=_dec(entry.get("cache_creation_input_token_cost")),
            cache_write_1h=_dec(entry.get("cache_creation_input_token_cost_above_1hr")),
            input_above_200k=_dec(entry.get("input_cost_per_token_above_200k_tokens")),
            output_above_200k=_dec(entry.get("output_cost_per_token_above_200k_tokens")),
            cache_read_above_200k=_dec(entry.get("cache_read_input_token_cost_above_200k_tokens")),
            cache_write_5m_above_200k=_dec(entry.get("cache_creation_input_token_cost_above_200k_tokens")),
            cache_write_1h_above_200k=_dec(
                entry.get("cache_creation_input_token_cost_above_1hr_above_200k_tokens")
            ),
            max_input_tokens=entry.get("max_input_tokens"),
            tiers=tiers,
        )


class PriceTable:
    """Model name → price, with the name variants providers and clients actually send."""

    def __init__(self, entries: Mapping[str, Mapping[str, Any]], version: str) -> None:
        self.version = version
        self._entries = entries
        self._lower = {name.lower(): name for name in entries}
        self._memo: dict[str, ModelPrice | None] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.lookup(model) is not None

    def lookup(self, model: str) -> ModelPrice | None:
        """The price for ``model``, or None when the table has no price for it (never a guess)."""
        try:
            return self._memo[model]
        except KeyError:
            pass
        found = None
        for candidate in _candidates(model):
            name = self._lower.get(candidate.lower())
            if name is not None:
                found = ModelPrice.from_entry(name, self._entries[name])
                break
        if len(self._memo) < 100_000:  # bounded: model names come from callers
            self._memo[model] = found
        return found


def _candidates(model: str) -> list[str]:
    """``openrouter/anthropic/claude-sonnet-4.5-20250929`` → itself, then without each prefix,
    then with dotted versions dashed (``4.5`` → ``4-5``), then without a date suffix."""
    names: list[str] = []
    parts = model.strip().split("/")
    for start in range(len(parts)):
        names.append("/".join(parts[start:]))
    out: list[str] = []
    for name in names:
        for variant in (name, _DOTTED_VERSION.sub("-", name)):
            for form in (variant, _DATE_SUFFIX.sub("", variant)):
                if form and form not in out:
                    out.append(form)
    return out


def load_price_table(overrides: Mapping[str, Mapping[str, Any]] | None = None) -> PriceTable:
    """The bundled snapshot with ``overrides`` (model → fields, USD per token) laid on top."""
    # Imported here (~3 ms): only overrides need it. The snapshot is read as a plain file next to
    # this module (importlib.resources alone costs ~10 ms of a short report's start-up).
    import hashlib

    raw = orjson.loads(SNAPSHOT.read_bytes())
    entries: dict[str, Mapping[str, Any]] = dict(raw["models"])
    version = str(raw["version"])
    if overrides:
        for name, fields in overrides.items():
            present = {k: v for k, v in fields.items() if v is not None}
            entries[name] = {**entries.get(name, {}), **present}
        digest = hashlib.sha256(orjson.dumps(overrides, option=orjson.OPT_SORT_KEYS)).hexdigest()[:8]
        version = f"{version}+local.{digest}"
    return PriceTable(entries, version)
