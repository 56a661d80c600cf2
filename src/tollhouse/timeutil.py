"""Calendar periods in the configured time zone, as UTC bounds for ledger queries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def period_bounds(period: Period, zone: ZoneInfo, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) of the calendar day, ISO week (Monday first) or month containing ``now``."""
    local = (now or datetime.now(UTC)).astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        start, end = midnight, _add_days(midnight, 1, zone)
    elif period is Period.WEEK:
        start = _add_days(midnight, -midnight.weekday(), zone)
        end = _add_days(start, 7, zone)
    else:
        start = midnight.replace(day=1)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
        end = end.replace(tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _add_days(moment: datetime, days: int, zone: ZoneInfo) -> datetime:
    # Wall-clock arithmetic, then re-attach the zone: a DST day is 23 or 25 hours long.
    naive = moment.replace(tzinfo=None) + timedelta(days=days)
    return naive.replace(tzinfo=zone)


def as_utc(moment: datetime) -> datetime:
    """Rows read back from SQLite are naive; every stored time is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
