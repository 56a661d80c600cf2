"""What happens once a call has its answer (or its error): one ledger row, the budget settled,
override savings counted, the live events and the request-path metrics.

Kept apart from the pipeline so every way a call can end (forwarded, streamed, cache hit,
sandbox, counted locally, refused, failed) records through the same few lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tollhouse.errors import TollhouseError, UpstreamRejected
from tollhouse.events.bus import EventBroadcaster
from tollhouse.gateway.call import Call
from tollhouse.gateway.shapes import log_id
from tollhouse.ledger.entry import LedgerEntry, Outcome
from tollhouse.ledger.writer import LedgerWriter
from tollhouse.metrics.collector import GatewayMetrics
from tollhouse.pricing.cost import Cost
from tollhouse.pricing.usage import Usage
from tollhouse.routing.stats import OverrideStats
from tollhouse.tenancy.gate import Gate

SOURCE = "gateway"


@dataclass(slots=True)
class Saving:
    """What a cache hit avoided paying."""

    nanos: int = 0
    tokens: int = 0


class CallRecorder:
    def __init__(
        self,
        *,
        ledger: LedgerWriter,
        gate: Gate,
        price_version: str,
        override_stats: OverrideStats,
        events: EventBroadcaster | None,
        metrics: GatewayMetrics | None,
    ) -> None:
        self._ledger = ledger
        self._gate = gate
        self._price_version = price_version
        self.override_stats = override_stats
        self.events = events
        self.metrics = metrics

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        if self.events is not None:
            self.events.publish(kind, data)

    def answered(
        self,
        call: Call,
        provider: str | None,
        *,
        status: int,
        outcome: str,
        usage: Usage,
        cost: Cost,
        served: str | None,
        tier: str | None,
        latency: int,
        ttft: int | None,
        upstream_id: str | None,
        error: TollhouseError | None = None,
        saving: Saving | None = None,
    ) -> None:
        self._gate.settle(call, cost.nanos, usage.total_tokens)
        if call.rule_id is not None and call.requested_model is not None and outcome != Outcome.SANDBOX:
            saved = self.override_stats.record(
                call.requested_model, served or call.model, usage, cost.nanos, tier
            )
            if self.metrics is not None:
                self.metrics.override(saved)
        self._ledger.record(
            _entry(
                call,
                provider,
                model_served=served,
                status_code=status,
                outcome=outcome,
                usage=usage,
                cost_nanos=cost.nanos,
                saved_cost_nanos=saving.nanos if saving else 0,
                tokens_saved=saving.tokens if saving else 0,
                cached=saving is not None,
                unpriced=cost.unpriced,
                price_version=self._price_version,
                service_tier=tier,
                latency_ms=latency,
                ttft_ms=ttft,
                upstream_request_id=upstream_id,
                error_code=error.error_code if error else None,
                error_message=error.message if error else None,
            )
        )
        if error is not None:
            self._error_event(call, error, status)

    def failed(self, call: Call, exc: TollhouseError) -> None:
        """The ledger row for a call refused or failed before any answer reached the client."""
        self._gate.settle(call, 0, 0)  # releases the reservation
        provider = exc.details.get("provider") if isinstance(exc.details.get("provider"), str) else None
        self._ledger.record(
            _entry(
                call,
                provider,
                status_code=exc.status_code,
                outcome=Outcome.ERROR,
                price_version=self._price_version,
                latency_ms=call.elapsed_ms(),
                error_code=exc.error_code,
                error_message=exc.message,
            )
        )
        self.refused(exc)
        self._error_event(call, exc, exc.status_code)

    def refused(self, exc: TollhouseError) -> None:
        """Count a refusal Tollhouse made itself (not a provider's own 4xx, not a 5xx)."""
        if self.metrics is not None and exc.status_code < 500 and not isinstance(exc, UpstreamRejected):
            self.metrics.refusal(exc.code)

    def _error_event(self, call: Call, exc: TollhouseError, status: int) -> None:
        self.emit(
            "error",
            {
                "code": exc.error_code,
                "message": exc.message,
                "status": status,
                "route": call.endpoint.value,
                "project_id": call.project_id,
                "model": call.model,
                "request_id": call.request_id,
            },
        )


def _entry(call: Call, provider: str | None, **fields: Any) -> LedgerEntry:
    """A gateway ledger row: the call's identity, plus what its outcome adds."""
    return LedgerEntry(
        id=log_id(call),
        request_id=call.request_id,
        created_at=call.created_at,
        project_id=call.project_id,
        api_key_id=call.api_key_id,
        source=SOURCE,
        route=call.endpoint.value,
        provider=provider,
        model_requested=call.requested_model or call.model,
        stream=call.stream,
        **fields,
    )
