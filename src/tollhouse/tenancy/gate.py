"""Admission on the gateway's hot path: who is calling, may they, and does the call fit.

    key (memory) → project view (memory) → one atomic admit: minute window, month quota,
    budget reservations (memory, or one Redis round trip) → forward … → settle with the
    real cost when the ledger row is made (0 on error releases the reservation)

A call's reservation is its prompt (estimated) at the model's input price plus ``max_tokens``
(or ``max_completion_tokens``, or ``tenancy.default_max_tokens``) at its output price, so the
spend of concurrent calls can exceed a limit by at most what is reserved in flight.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Protocol

from tollhouse.errors import BudgetExceeded, Forbidden, QuotaExceeded, RateLimited, Unauthorized
from tollhouse.gateway.call import Call, Endpoint
from tollhouse.gateway.estimate import prompt_tokens
from tollhouse.gateway.providers import ProviderRegistry
from tollhouse.pricing.cost import compute_cost
from tollhouse.pricing.table import PriceTable
from tollhouse.pricing.usage import Usage
from tollhouse.tenancy.counters import Ask, BudgetLine, Hold, Outcome, Verdict
from tollhouse.tenancy.keyring import KeyRing
from tollhouse.tenancy.keys import KeyRecord, presented_key
from tollhouse.tenancy.plans import PeriodClock, Plan, PlanBook, WindowClock
from tollhouse.tenancy.projects import ProjectDirectory, ProjectView
from tollhouse.tenancy.store import PROJECT_BUDGET, Budget

_GENERATING = (Endpoint.CHAT, Endpoint.COMPLETIONS, Endpoint.MESSAGES)


class Counters(Protocol):
    async def admit(self, ask: Ask) -> Outcome: ...

    def settle(self, hold: Hold, nanos: int, tokens: int) -> None: ...

    async def current(self, line: BudgetLine) -> tuple[int, int]: ...

    async def forget(self, lines: list[BudgetLine]) -> None: ...

    async def close(self) -> None: ...


class Gate:
    def __init__(
        self,
        *,
        keys: KeyRing,
        projects: ProjectDirectory,
        counters: Counters,
        plans: PlanBook,
        windows: WindowClock,
        periods: PeriodClock,
        prices: PriceTable,
        registry: ProviderRegistry,
        default_max_tokens: int,
    ) -> None:
        self.keys = keys
        self.projects = projects
        self.counters = counters
        self.plans = plans
        self._windows = windows
        self._periods = periods
        self._prices = prices
        self._registry = registry
        self._default_max_tokens = default_max_tokens

    async def identify(self, call: Call) -> ProjectView:
        """Resolve the project from the key (or, keyless on loopback, from the call)."""
        record = await self.authenticate(call.headers)
        if record is not None:
            if call.project_explicit and call.project_id != record.project_id:
                raise Forbidden(
                    "this API key belongs to another project",
                    details={"project_id": call.project_id},
                )
            call.project_id = record.project_id
            call.api_key_id = record.id
            call.sandbox = record.is_test
            self.keys.touch(record.id)
        view = await self.projects.get(call.project_id, create=record is None)
        if view is None:
            raise Unauthorized("the API key's project no longer exists")
        return view

    async def authenticate(self, headers: dict[str, str]) -> KeyRecord | None:
        """The presented key's record; None in keyless local mode; raises when refused."""
        secret = presented_key(headers)
        if secret is not None:
            record = await self.keys.lookup(secret)
            if record is None:
                raise Unauthorized("invalid or revoked API key")
            return record
        if await self.keys.auth_required():
            raise Unauthorized("an API key is required (Authorization: Bearer th_… or x-api-key: th_…)")
        return None

    async def admit(self, call: Call) -> None:
        await self.admit_view(call, await self.identify(call))

    async def admit_view(self, call: Call, view: ProjectView, *, reserve: bool = True) -> None:
        """Rate limit, quota and (``reserve``) budget reservation for an identified call.

        A call answered from the cache passes ``reserve=False``: it still counts against the
        plan's request limits but reserves nothing, since it costs nothing.
        """
        call.provider_keys = view.provider_keys
        plan = self.plans.test_keys if call.sandbox else self.plans.get(view.plan)
        lines = () if call.sandbox or not reserve else self._lines(view, call.api_key_id)
        if not lines and plan.requests_per_minute is None and plan.requests_per_month is None:
            return
        nanos, tokens = self.estimate(call) if lines else (0, 0)
        now = time.time()
        windows = self._windows.now(now)
        scope = f"k:{call.api_key_id}" if call.sandbox else f"p:{call.project_id}"
        outcome = await self.counters.admit(Ask(scope, plan, windows, lines, nanos, tokens))
        headers: dict[str, str] = {}
        if plan.requests_per_minute is not None:
            headers = {
                "x-ratelimit-limit": str(plan.requests_per_minute),
                "x-ratelimit-remaining": str(max(0, plan.requests_per_minute - outcome.minute_used)),
                "x-ratelimit-reset": str(windows.minute_reset),
            }
        if outcome.verdict != Verdict.OK:
            raise _refusal(
                outcome, plan, windows.minute_reset, windows.month_reset, nanos, tokens, headers, now
            )
        call.rate_headers = headers or None
        if lines:
            call.hold = Hold(lines, nanos, tokens)

    def settle(self, call: Call, nanos: int, tokens: int) -> None:
        """Replace the call's reservation by its real cost; ``0, 0`` releases it. Once only."""
        hold = call.hold
        if hold is None or hold.settled:
            return
        hold.settled = True
        self.counters.settle(hold, nanos, tokens)

    async def remaining(self, view: ProjectView) -> tuple[int | None, int | None] | None:
        """(tokens, nano-dollars) left in the project's own budget, or None without one.

        Read only for auto-routing (seed 001's low-budget rule), so a call that names its
        model never pays for it.
        """
        budget = view.budgets.get(PROJECT_BUDGET) if view.budgets else None
        if budget is None:
            return None
        nanos, tokens = await self.counters.current(self.line(view.id, budget))
        left_tokens = None if budget.limit_tokens is None else max(0, budget.limit_tokens - tokens)
        left_nanos = None if budget.limit_nanos is None else max(0, budget.limit_nanos - nanos)
        return left_tokens, left_nanos

    def estimate(self, call: Call) -> tuple[int, int]:
        prompt = prompt_tokens(call.body)
        output = 0
        if call.endpoint in _GENERATING:
            asked = call.body.get("max_tokens") or call.body.get("max_completion_tokens")
            output = asked if isinstance(asked, int) and asked > 0 else self._default_max_tokens
        price = self._prices.lookup(call.model)
        if price is None:
            for route in self._registry.routes(call.model):
                price = self._prices.lookup(route.upstream_model)
                if price is not None:
                    break
        cost = compute_cost(Usage(input_tokens=prompt, output_tokens=output), price)
        return cost.nanos, prompt + output

    def _lines(self, view: ProjectView, key_id: str | None) -> tuple[BudgetLine, ...]:
        if not view.budgets:
            return ()
        lines = []
        for scope in (PROJECT_BUDGET, key_id):
            if scope is None:
                continue
            budget = view.budgets.get(scope)
            if budget is not None:
                lines.append(self.line(view.id, budget))
        return tuple(lines)

    def line(self, project_id: str, budget: Budget, at: float | None = None) -> BudgetLine:
        window = self._periods.window(budget.period, time.time() if at is None else at)
        return BudgetLine(
            counter=f"{project_id}/{budget.key_id}",
            window=window.index,
            limit_nanos=budget.limit_nanos,
            limit_tokens=budget.limit_tokens,
            project_id=project_id,
            key_id=budget.key_id,
            period=budget.period.value,
            start=window.start,
            end=window.end,
        )


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


def _refusal(
    outcome: Outcome,
    plan: Plan,
    minute_reset: int,
    month_reset: int,
    nanos: int,
    tokens: int,
    headers: dict[str, str],
    now: float,
) -> RateLimited:
    if outcome.verdict == Verdict.QUOTA:
        wait = max(1, int(month_reset - now))
        return QuotaExceeded(
            f"the monthly request quota of plan {plan.name!r} is used up",
            details={"plan": plan.name, "limit": plan.requests_per_month, "reset_at": _iso(month_reset)},
            headers={**headers, "retry-after": str(wait)},
        )
    if outcome.verdict == Verdict.RATE:
        wait = max(1, int(minute_reset - now))
        return RateLimited(
            f"rate limit of plan {plan.name!r} exceeded ({plan.requests_per_minute} requests per minute)",
            details={"plan": plan.name, "limit": plan.requests_per_minute, "reset_at": _iso(minute_reset)},
            headers={**headers, "retry-after": str(wait)},
        )
    line = outcome.line
    assert line is not None
    details: dict[str, Any] = {
        "scope": "key" if line.key_id else "project",
        "period": line.period,
        "limit_usd": line.limit_nanos / 1e9 if line.limit_nanos is not None else None,
        "limit_tokens": line.limit_tokens,
        "spent_usd": outcome.spent_nanos / 1e9,
        "spent_tokens": outcome.spent_tokens,
        "requested_usd": nanos / 1e9,
        "requested_tokens": tokens,
        "reset_at": _iso(line.end),
    }
    if line.key_id:
        details["key_id"] = line.key_id
    return BudgetExceeded(
        f"this request would exceed the {line.period}ly budget"
        if line.period != "day"
        else "this request would exceed the daily budget",
        details=details,
        headers={**headers, "retry-after": str(max(1, int(line.end - now)))},
    )
