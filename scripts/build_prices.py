"""Derive the bundled price snapshot from the public LiteLLM price map.

    python scripts/build_prices.py ../shared/data/prices/model_prices_and_context_window.json

Keeps every entry that has a per-token price and only the fields the engine reads, sorted, so
the shipped file is small, deterministic, and its hash names the price-table version.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

KEEP = (
    "litellm_provider",
    "mode",
    "max_input_tokens",
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "cache_creation_input_token_cost_above_1hr",
    "input_cost_per_token_above_200k_tokens",
    "output_cost_per_token_above_200k_tokens",
    "cache_read_input_token_cost_above_200k_tokens",
    "cache_creation_input_token_cost_above_200k_tokens",
    "cache_creation_input_token_cost_above_1hr_above_200k_tokens",
)
TIERS = ("batches", "priority", "flex")
TIERED_BASES = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
)
SOURCE = "litellm-1.109.1"
LONG_CONTEXT_FIELDS = tuple(k for k in KEEP if k.endswith("_above_200k_tokens"))


def _first_party_twin(name: str, raw: dict[str, dict[str, object]]) -> dict[str, object] | None:
    """The Bedrock/Vertex entry for a first-party Anthropic model: same vendor list prices."""
    for twin in (f"anthropic.{name}-v1:0", f"vertex_ai/{name}"):
        entry = raw.get(twin)
        if isinstance(entry, dict) and "input_cost_per_token" in entry:
            return entry
    return None


def _fill_anthropic_gaps(
    name: str, entry: dict[str, object], raw: dict[str, dict[str, object]]
) -> dict[str, object]:
    """LiteLLM lists Anthropic's >200k prices only under the Bedrock/Vertex names, and a few
    first-party entries carry no price at all; borrow both from the twin when its base prices agree."""
    if entry.get("litellm_provider") != "anthropic":
        return entry
    twin = _first_party_twin(name, raw)
    if twin is None:
        return entry
    if "input_cost_per_token" not in entry:
        entry = {**{k: v for k, v in twin.items() if k in KEEP}, "litellm_provider": "anthropic"}
    same_base = all(entry.get(k) == twin.get(k) for k in ("input_cost_per_token", "output_cost_per_token"))
    if same_base and "input_cost_per_token_above_200k_tokens" not in entry:
        entry = {**entry, **{k: twin[k] for k in LONG_CONTEXT_FIELDS if k in twin}}
    return entry


def build(source: Path, target: Path) -> str:
    raw = json.loads(source.read_text())
    models: dict[str, dict[str, object]] = {}
    for name, entry in sorted(raw.items()):
        if name == "sample_spec" or not isinstance(entry, dict):
            continue
        entry = _fill_anthropic_gaps(name, entry, raw)
        if "input_cost_per_token" not in entry and "output_cost_per_token" not in entry:
            continue
        kept = {k: entry[k] for k in KEEP if entry.get(k) is not None}
        for base in TIERED_BASES:
            for tier in TIERS:
                key = f"{base}_{tier}"
                if entry.get(key) is not None:
                    kept[key] = entry[key]
        models[name] = kept
    # First-party Anthropic models LiteLLM lists only under their Bedrock name (e.g.
    # claude-sonnet-4-20250514): Anthropic's list prices are the same, so add the first-party name.
    for name, entry in sorted(raw.items()):
        if not (name.startswith("anthropic.claude-") and name.endswith("-v1:0")) or not isinstance(
            entry, dict
        ):
            continue
        first_party = name[len("anthropic.") : -len("-v1:0")]
        if first_party not in models and "input_cost_per_token" in entry:
            twin = {k: entry[k] for k in KEEP if entry.get(k) is not None}
            models[first_party] = {**twin, "litellm_provider": "anthropic"}
    body = json.dumps(models, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(body.encode()).hexdigest()[:12]
    version = f"{SOURCE}@{digest}"
    target.write_text(
        json.dumps(
            {"version": version, "source": SOURCE, "models": models}, sort_keys=True, separators=(",", ":")
        )
        + "\n"
    )
    return f"{version}: {len(models)} models"


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[2] / "shared/data/prices/model_prices_and_context_window.json"
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    out = Path(__file__).resolve().parents[1] / "src/tollhouse/pricing/data/prices.json"
    print(build(src, out))
