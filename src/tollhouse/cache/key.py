"""The exact-cache key: SHA-256 over the canonical request, and the per-request cache directives.

What goes in is everything that can change the answer: project, served model, route, messages,
system, tools, tool choice, sampling parameters, response format, and any field we do not know
(an unknown field is assumed to matter). What stays out only changes delivery or bookkeeping:
the stream flag and its options, caller metadata, Tollhouse's own fields, and Anthropic's
``cache_control`` markers (they move every turn and change the price, not the answer).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

KEY_VERSION = 1

#: Top-level fields that never change the answer's content.
IGNORED_FIELDS = frozenset(
    {
        "model",  # replaced by the served model
        "stream",
        "stream_options",
        "user",
        "metadata",
        "project_id",
        "timeout",
        "store",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
    }
)

CACHEABLE_ENDPOINTS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/embeddings"})


def _strip_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache_control(item) for item in value]
    return value


def canonical_request(project_id: str, served_model: str, endpoint: str, body: Mapping[str, Any]) -> bytes:
    """Deterministic bytes for the request: keys sorted, delivery-only fields dropped."""
    kept = {k: v for k, v in body.items() if k not in IGNORED_FIELDS}
    envelope = {
        "v": KEY_VERSION,
        "project": project_id,
        "model": served_model,
        "endpoint": endpoint,
        "body": kept,
    }
    text = orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS)
    if b'"cache_control"' in text:  # rare outside Claude Code: pay for the deep copy only then
        envelope["body"] = _strip_cache_control(kept)
        text = orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS)
    return text


def exact_key(project_id: str, served_model: str, endpoint: str, body: Mapping[str, Any]) -> str:
    """``<project>:<sha256>``: the project prefix lets a store clear one project's entries."""
    digest = hashlib.sha256(canonical_request(project_id, served_model, endpoint, body)).hexdigest()
    return f"{project_id}:{digest}"


def project_of(key: str) -> str:
    """The project a key belongs to (project ids may contain ``:``; the digest never does)."""
    return key.rpartition(":")[0]


@dataclass(frozen=True, slots=True)
class CacheDirective:
    """What this request allows: read a cached answer, store the fresh one, and for how long."""

    lookup: bool = True
    store: bool = True
    ttl_s: int | None = None

    @property
    def bypass(self) -> bool:
        return not (self.lookup or self.store)


def directive_from_headers(headers: Mapping[str, str]) -> CacheDirective:
    """Per-request opt-out, from lower-cased headers.

    ``x-tollhouse-cache: off`` (or ``bypass``/``no-store``, or ``cache-control: no-store``): neither
    read nor write. ``x-tollhouse-cache: refresh`` (or ``cache-control: no-cache``): skip the read,
    store the fresh answer. ``x-tollhouse-cache-ttl: 60``: keep this answer 60 s.
    """
    own = headers.get("x-tollhouse-cache", "").strip().lower()
    control = headers.get("cache-control", "").lower()
    lookup = store = True
    if own in ("off", "bypass", "false", "no-store", "0") or "no-store" in control:
        lookup = store = False
    elif own in ("refresh", "no-cache") or "no-cache" in control:
        lookup = False
    ttl: int | None = None
    raw_ttl = headers.get("x-tollhouse-cache-ttl")
    if raw_ttl and raw_ttl.strip().isdigit() and int(raw_ttl) > 0:
        ttl = int(raw_ttl)
    return CacheDirective(lookup=lookup, store=store, ttl_s=ttl)
