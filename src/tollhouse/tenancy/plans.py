"""Plans (seed 004's table, plus ``unlimited`` and custom plans from config) and their windows.

Windows are fixed and calendar-aligned: the current UTC minute for requests per minute (so
``X-RateLimit-Reset`` is the next minute boundary) and the calendar month in the configured
time zone for the monthly quota. Their index is part of every counter key, so a new window
starts from zero without any sweeper.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tollhouse.settings import TenancySettings
from tollhouse.timeutil import Period, period_bounds


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    requests_per_minute: int | None
    requests_per_month: int | None


BUILTIN_PLANS: dict[str, Plan] = {
    "free": Plan("free", 10, 10_000),
    "starter": Plan("starter", 60, 100_000),
    "pro": Plan("pro", 600, 1_000_000),
    "agency": Plan("agency", 6_000, 10_000_000),
    "unlimited": Plan("unlimited", None, None),
}


class PlanBook:
    """The plans this server knows: built-in ones, overridden or extended by ``[tenancy.plans]``."""

    def __init__(self, settings: TenancySettings) -> None:
        plans = dict(BUILTIN_PLANS)
        for name, custom in settings.plans.items():
            plans[name] = Plan(name, custom.requests_per_minute, custom.requests_per_month)
        self._plans = plans
        self.default = plans[settings.default_plan]
        self.test_keys = Plan(
            "test", settings.test_key_requests_per_minute, settings.test_key_requests_per_month
        )

    def get(self, name: str | None) -> Plan:
        if name is None:
            return self.default
        return self._plans.get(name, self.default)

    def __contains__(self, name: object) -> bool:
        return name in self._plans

    @property
    def names(self) -> list[str]:
        return sorted(self._plans)


@dataclass(frozen=True, slots=True)
class Windows:
    """The current minute and month windows: indexes for counter keys, ends for headers."""

    minute: int
    minute_reset: int  # unix seconds
    month: str  # "2026-11"
    month_reset: int  # unix seconds


class WindowClock:
    """Computes ``Windows`` cheaply: the month bounds are cached until the month ends."""

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._month_end = 0.0
        self._month = ""

    def now(self, at: float) -> Windows:
        minute = int(at // 60)
        if at >= self._month_end:
            start, end = period_bounds(Period.MONTH, self._zone, datetime.fromtimestamp(at, UTC))
            self._month = start.astimezone(self._zone).strftime("%Y-%m")
            self._month_end = end.timestamp()
        return Windows(minute, (minute + 1) * 60, self._month, int(self._month_end))


@dataclass(frozen=True, slots=True)
class PeriodWindow:
    index: str  # "day:2026-11-22", "week:2026-11-16", "month:2026-11"
    start: float
    end: float


class PeriodClock:
    """The current budget period (day, week or month in the configured zone), recomputed only
    when the cached one has ended."""

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._cached: dict[Period, PeriodWindow] = {}

    def window(self, period: Period, at: float) -> PeriodWindow:
        cached = self._cached.get(period)
        if cached is not None and cached.start <= at < cached.end:
            return cached
        start, end = period_bounds(period, self._zone, datetime.fromtimestamp(at, UTC))
        label = start.astimezone(self._zone).strftime("%Y-%m" if period is Period.MONTH else "%Y-%m-%d")
        window = PeriodWindow(f"{period.value}:{label}", start.timestamp(), end.timestamp())
        self._cached[period] = window
        return window
