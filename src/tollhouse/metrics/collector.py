"""The gateway's Prometheus metrics, in one per-app ``CollectorRegistry``.

Names follow the research's gateway survey (Bifrost/LiteLLM style): ``*_requests_total``,
``*_tokens_total{kind}``, ``*_cost_usd_total``, ``*_cache_hits_total{type}``,
``*_overhead_seconds`` and so on. Labels are bounded: a route, a provider *name* from config,
an outcome, a token kind, an error class code. Never a project, key or model name, whose
number a caller controls.

Counters that the ledger row carries (requests, tokens, cost, savings, latency, time to first
token) are fed once per ledger *batch* (``on_batch``), summed in Python first, so the request
path pays nothing for them. Only what the row does not carry is observed on the request path:
the gateway's own overhead, upstream latency, cache hits by type and refusals.
"""

from __future__ import annotations

from collections import Counter as Tally
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tollhouse.ledger.entry import LedgerEntry

CONTENT_TYPE = CONTENT_TYPE_LATEST
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_TOKEN_KINDS = ("input", "cache_read", "cache_write_5m", "cache_write_1h", "output")
_KNOWN_ROUTES = frozenset(
    {
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/messages",
        "/v1/messages/count_tokens",
    }
)


def _route(route: str) -> str:
    return route if route in _KNOWN_ROUTES else "other"


class GatewayMetrics:
    def __init__(self, provider_names: tuple[str, ...] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._providers = frozenset(provider_names)
        r = self.registry
        self.requests = Counter(
            "tollhouse_requests", "Gateway calls, by route and outcome.", ("route", "outcome"), registry=r
        )
        self.tokens = Counter("tollhouse_tokens", "Tokens billed, by kind.", ("kind",), registry=r)
        self.cost = Counter(
            "tollhouse_cost_usd", "Provider cost of gateway calls (USD).", ("route",), registry=r
        )
        self.cache_hits = Counter(
            "tollhouse_cache_hits", "Answers served from a cache, by cache type.", ("type",), registry=r
        )
        self.cache_misses = Counter("tollhouse_cache_misses", "Cache lookups that found nothing.", registry=r)
        self.saved = Counter(
            "tollhouse_saved_usd", "Cost avoided, by how (cache or override).", ("reason",), registry=r
        )
        self.tokens_saved = Counter(
            "tollhouse_tokens_saved", "Tokens not paid for thanks to a cache hit.", registry=r
        )
        self.overrides = Counter(
            "tollhouse_overrides", "Calls whose model an override rule replaced.", registry=r
        )
        self.refusals = Counter(
            "tollhouse_refusals", "Calls refused by Tollhouse itself, by error code.", ("code",), registry=r
        )
        self.overhead = Histogram(
            "tollhouse_overhead_seconds",
            "Time spent in Tollhouse on a call, upstream time excluded.",
            ("route",),
            buckets=_OVERHEAD_BUCKETS,
            registry=r,
        )
        self.upstream = Histogram(
            "tollhouse_upstream_latency_seconds",
            "Upstream time: the whole answer, or the first byte of a stream.",
            ("provider",),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "tollhouse_ttft_seconds",
            "Time to first token of a call.",
            ("route",),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "tollhouse_request_latency_seconds",
            "Whole call latency as the client saw it.",
            ("route",),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        # Children bound once per label value: labels() costs a lock and a dict lookup per call.
        self._overhead_by_route = {route: self.overhead.labels(route) for route in (*_KNOWN_ROUTES, "other")}
        self._hit_by_type = {kind: self.cache_hits.labels(kind) for kind in ("exact", "semantic")}

    # -- request path (cheap: one bound child each) ---------------------------------------------

    def observe_overhead(self, route: str, seconds: float) -> None:
        self._overhead_by_route[_route(route)].observe(max(0.0, seconds))

    def observe_upstream(self, provider: str, seconds: float) -> None:
        self.upstream.labels(provider if provider in self._providers else "other").observe(seconds)

    def cache_hit(self, kind: str) -> None:
        self._hit_by_type.get(kind, self._hit_by_type["exact"]).inc()

    def cache_miss(self) -> None:
        self.cache_misses.inc()

    def refusal(self, code: str) -> None:
        self.refusals.labels(code).inc()

    def override(self, saved_nanos: int) -> None:
        self.overrides.inc()
        if saved_nanos:
            self.saved.labels("override").inc(saved_nanos / 1e9)

    # -- ledger batches ----------------------------------------------------------------------------

    async def on_batch(self, batch: list[LedgerEntry]) -> None:
        """Ledger listener: sum a committed batch, then one ``inc`` per label set."""
        requests: Tally[tuple[str, str]] = Tally()
        cost: Tally[str] = Tally()
        tokens = [0, 0, 0, 0, 0]
        saved = tokens_saved = 0
        for entry in batch:
            if entry.source != "gateway":
                continue
            route = _route(entry.route)
            requests[(route, entry.outcome)] += 1
            cost[route] += entry.cost_nanos
            u = entry.usage
            tokens[0] += u.input_tokens
            tokens[1] += u.cache_read_tokens
            tokens[2] += u.cache_write_5m_tokens
            tokens[3] += u.cache_write_1h_tokens
            tokens[4] += u.output_tokens
            saved += entry.saved_cost_nanos
            tokens_saved += entry.tokens_saved
            if entry.ttft_ms is not None and entry.outcome == "ok":
                self.ttft.labels(route).observe(entry.ttft_ms / 1000)
            if entry.latency_ms is not None:
                self.latency.labels(route).observe(entry.latency_ms / 1000)
        for (route, outcome), count in requests.items():
            self.requests.labels(route, outcome).inc(count)
        for route, nanos in cost.items():
            if nanos:
                self.cost.labels(route).inc(nanos / 1e9)
        for kind, count in zip(_TOKEN_KINDS, tokens, strict=True):
            if count:
                self.tokens.labels(kind).inc(count)
        if saved:
            self.saved.labels("cache").inc(saved / 1e9)
        if tokens_saved:
            self.tokens_saved.inc(tokens_saved)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def snapshot(self) -> dict[str, Any]:
        """A few totals for humans (the terminal's ``stats``)."""
        out: dict[str, Any] = {}
        for family in self.registry.collect():
            if family.name in ("tollhouse_requests", "tollhouse_cost_usd", "tollhouse_saved_usd"):
                out[family.name] = sum(s.value for s in family.samples if s.name.endswith("_total"))
        return out
