"""Rate-limit windows and budget counters for one process (embedded mode).

Everything that decides runs without an ``await`` between check and commit, so in one event
loop it is atomic: 200 concurrent requests cannot all see the same remaining budget. A budget
counter holds settled spend plus in-flight reservations for one period; it is seeded once from
the ledger when its period is first used, and replaced (not swept) when the period changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tollhouse.tenancy.plans import Plan, Windows


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One budget that a request must fit in: its counter and the current period."""

    counter: str  # "proj_x/" (project) or "proj_x/key_y"
    window: str  # the period's index, e.g. "day:2026-11-22"
    limit_nanos: int | None
    limit_tokens: int | None
    project_id: str
    key_id: str
    period: str
    start: float  # unix seconds
    end: float


@dataclass(slots=True)
class Ask:
    scope: str  # rate-limit scope: "p:<project>" or "k:<test key>"
    plan: Plan
    windows: Windows
    lines: tuple[BudgetLine, ...]
    nanos: int
    tokens: int


class Verdict:
    OK = 0
    RATE = 1
    QUOTA = 2
    BUDGET = 3


@dataclass(slots=True)
class Outcome:
    verdict: int
    minute_used: int = 0
    month_used: int = 0
    line: BudgetLine | None = None
    spent_nanos: int = 0
    spent_tokens: int = 0


@dataclass(slots=True)
class Hold:
    """A reservation made for one call; settled exactly once."""

    lines: tuple[BudgetLine, ...]
    nanos: int
    tokens: int
    settled: bool = field(default=False)


@dataclass(slots=True)
class _Slot:
    window: str
    nanos: int
    tokens: int


Seeder = Callable[[BudgetLine], Awaitable[tuple[int, int]]]


def fits(line: BudgetLine, nanos: int, tokens: int, ask_nanos: int, ask_tokens: int) -> bool:
    if line.limit_nanos is not None and nanos + ask_nanos > line.limit_nanos:
        return False
    return not (line.limit_tokens is not None and tokens + ask_tokens > line.limit_tokens)


class MemoryCounters:
    def __init__(self, seeder: Seeder) -> None:
        self._seeder = seeder
        self._minute: dict[str, list[int]] = {}  # scope -> [minute index, count]
        self._month: dict[str, tuple[str, int]] = {}  # scope -> (month, count)
        self._budget: dict[str, _Slot] = {}
        self._seeding: dict[str, asyncio.Future[None]] = {}

    async def admit(self, ask: Ask) -> Outcome:
        while (missing := self._unseeded(ask.lines)) is not None:
            await self._seed(missing)
        return self._decide(ask)

    def _unseeded(self, lines: tuple[BudgetLine, ...]) -> BudgetLine | None:
        for line in lines:
            slot = self._budget.get(line.counter)
            if slot is None or slot.window != line.window:
                return line
        return None

    async def _seed(self, line: BudgetLine) -> None:
        name = f"{line.counter}@{line.window}"
        pending = self._seeding.get(name)
        if pending is None:

            async def load() -> None:
                try:
                    nanos, tokens = await self._seeder(line)
                    slot = self._budget.get(line.counter)
                    if slot is None or slot.window != line.window:
                        self._budget[line.counter] = _Slot(line.window, nanos, tokens)
                finally:
                    self._seeding.pop(name, None)

            pending = asyncio.ensure_future(load())
            self._seeding[name] = pending
        await asyncio.shield(pending)

    def _decide(self, ask: Ask) -> Outcome:
        plan, windows = ask.plan, ask.windows
        minute_slot = self._minute.get(ask.scope)
        minute_used = minute_slot[1] if minute_slot is not None and minute_slot[0] == windows.minute else 0
        month_slot = self._month.get(ask.scope)
        month_used = month_slot[1] if month_slot is not None and month_slot[0] == windows.month else 0
        if plan.requests_per_month is not None and month_used >= plan.requests_per_month:
            return Outcome(Verdict.QUOTA, minute_used, month_used)
        if plan.requests_per_minute is not None and minute_used >= plan.requests_per_minute:
            return Outcome(Verdict.RATE, minute_used, month_used)
        for line in ask.lines:
            slot = self._budget[line.counter]
            if not fits(line, slot.nanos, slot.tokens, ask.nanos, ask.tokens):
                return Outcome(Verdict.BUDGET, minute_used, month_used, line, slot.nanos, slot.tokens)
        for line in ask.lines:
            slot = self._budget[line.counter]
            slot.nanos += ask.nanos
            slot.tokens += ask.tokens
        if plan.requests_per_minute is not None:
            self._minute[ask.scope] = [windows.minute, minute_used + 1]
        if plan.requests_per_month is not None:
            self._month[ask.scope] = (windows.month, month_used + 1)
        return Outcome(Verdict.OK, minute_used + 1, month_used + 1)

    def settle(self, hold: Hold, nanos: int, tokens: int) -> None:
        """Replace the reservation by what the call really cost (0 releases it)."""
        for line in hold.lines:
            slot = self._budget.get(line.counter)
            if slot is not None and slot.window == line.window:  # else the period has rolled over
                slot.nanos += nanos - hold.nanos
                slot.tokens += tokens - hold.tokens

    async def current(self, line: BudgetLine) -> tuple[int, int]:
        """Spend plus in-flight reservations in the line's period."""
        while self._unseeded((line,)) is not None:
            await self._seed(line)
        slot = self._budget[line.counter]
        return slot.nanos, slot.tokens

    async def forget(self, lines: list[BudgetLine]) -> None:
        """A budget was set or removed: its counter reseeds from the ledger at next use (while it
        was absent nothing was reserved against it, so the old counter may be behind)."""
        for line in lines:
            self._budget.pop(line.counter, None)

    async def close(self) -> None:
        return None
