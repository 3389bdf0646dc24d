"""Local times that do not exist or occur twice around a DST switch, for a time window.

The staging model flags (or quarantines) a local time in one of these ranges. They are
found here, once per run, from the zone's rules, so that a day without a switch costs
the SQL nothing but one boolean parameter.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_STEP = timedelta(hours=1)  # no zone switches twice within an hour


def dst_ranges(
    timezone: str, start_utc: datetime, end_utc: datetime
) -> tuple[list[dict[str, datetime]], list[dict[str, datetime]]]:
    """(gaps, folds) between ``start_utc`` and ``end_utc``: local-time ranges ``[s, e)``
    (naive, in ``timezone``) that do not exist, and that occur twice."""
    zone = ZoneInfo(timezone)
    gaps: list[dict[str, datetime]] = []
    folds: list[dict[str, datetime]] = []
    instant = start_utc.astimezone(UTC)
    while instant < end_utc:
        following = instant + _STEP
        before, after = _offset(zone, instant), _offset(zone, following)
        if before != after:
            switch = _switch_instant(zone, instant, following)
            naive = switch.replace(tzinfo=None)
            if after > before:
                gaps.append({"s": naive + before, "e": naive + after})
            else:
                folds.append({"s": naive + after, "e": naive + before})
        instant = following
    return gaps, folds


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def _switch_instant(zone: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """The first instant in (low, high] with the offset in force at ``high``."""
    target = _offset(zone, high)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if _offset(zone, middle) == target:
            high = middle
        else:
            low = middle
    return high
