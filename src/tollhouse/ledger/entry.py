"""A ledger row as the gateway and importers build it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from tollhouse.ids import new_id
from tollhouse.pricing.usage import Usage


class Outcome:
    OK = "ok"
    ERROR = "error"
    CLIENT_DISCONNECTED = "client_disconnected"
    CACHE_HIT = "cache_hit"
    SANDBOX = "sandbox"  # a th_test_ key: answered locally, never charged


@dataclass(slots=True)
class LedgerEntry:
    project_id: str
    source: str
    route: str
    status_code: int
    outcome: str
    price_version: str
    id: str = field(default_factory=lambda: new_id("log"))
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    request_id: str | None = None
    api_key_id: str | None = None
    provider: str | None = None
    model_requested: str | None = None
    model_served: str | None = None
    stream: bool = False
    usage: Usage = field(default_factory=Usage)
    cost_nanos: int = 0
    saved_cost_nanos: int = 0
    tokens_saved: int = 0
    cached: bool = False
    unpriced: bool = False
    service_tier: str | None = None
    latency_ms: int | None = None
    ttft_ms: int | None = None
    upstream_request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    session_id: str | None = None
    is_subagent: bool = False
    external_id: str | None = None

    def as_row(self) -> dict[str, Any]:
        # A flat dict by hand: dataclasses.asdict recurses and copies (15x slower, on the loop).
        row = {name: getattr(self, name) for name in _COLUMNS}
        usage = self.usage
        row["input_tokens"] = usage.input_tokens
        row["cache_read_tokens"] = usage.cache_read_tokens
        row["cache_write_5m_tokens"] = usage.cache_write_5m_tokens
        row["cache_write_1h_tokens"] = usage.cache_write_1h_tokens
        row["output_tokens"] = usage.output_tokens
        row["reasoning_tokens"] = usage.reasoning_tokens
        message = row["error_message"]
        if message and len(message) > 2000:
            row["error_message"] = message[:2000]
        return row


_COLUMNS = tuple(f.name for f in fields(LedgerEntry) if f.name != "usage")
