"""FHIR dates as ranges of time (http://hl7.org/fhir/R4/search.html#date).

Every date, dateTime, instant or Period is an interval [low, high] in epoch seconds (UTC).
A partial date covers its whole precision: ``2020`` is all of 2020. Values without a time
zone are read as UTC. Open-ended periods use +/- ``INFINITY``.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

INFINITY = 1.0e12  # year ~33,658: beyond any FHIR date, and portable to SQL floats
_EPSILON = 1e-6

_PATTERN = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


@lru_cache(maxsize=8192)
def parse_range(value: str) -> tuple[float, float] | None:
    """The interval a date/dateTime/instant string covers, or None if it is not one.
    Remembered: the same birth dates, admission days and plan periods recur write after
    write, and search indexing reads every date of every resource written."""
    match = _PATTERN.match(value)
    if match is None:
        return None
    year = int(match["y"])
    try:
        if match["m"] is None:
            start = datetime(year, 1, 1, tzinfo=UTC)
            return start.timestamp(), datetime(year + 1, 1, 1, tzinfo=UTC).timestamp() - _EPSILON
        month = int(match["m"])
        if match["d"] is None:
            start = datetime(year, month, 1, tzinfo=UTC)
            days = calendar.monthrange(year, month)[1]
            return start.timestamp(), (start + timedelta(days=days)).timestamp() - _EPSILON
        day = int(match["d"])
        if match["H"] is None:
            start = datetime(year, month, day, tzinfo=UTC)
            return start.timestamp(), (start + timedelta(days=1)).timestamp() - _EPSILON
        return _time_range(match, year, month, day)
    except ValueError:
        return None


def _time_range(match: re.Match[str], year: int, month: int, day: int) -> tuple[float, float]:
    start = datetime(year, month, day, int(match["H"]), int(match["M"]), tzinfo=UTC)
    tz = match["tz"]
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
        start -= sign * offset
    low = start.timestamp()
    if match["S"] is None:
        return low, low + 60 - _EPSILON
    low += int(match["S"])
    if match["f"]:
        fraction = match["f"][1:]
        low += float("0." + fraction)
        return low, low + 10.0 ** -len(fraction) - _EPSILON
    return low, low + 1 - _EPSILON


def period_range(period: dict[str, object]) -> tuple[float, float] | None:
    """The interval of a Period; a missing start or end is open."""
    start, end = period.get("start"), period.get("end")
    low_range = parse_range(start) if isinstance(start, str) else None
    high_range = parse_range(end) if isinstance(end, str) else None
    low = low_range[0] if low_range else -INFINITY
    high = high_range[1] if high_range else INFINITY
    if low == -INFINITY and high == INFINITY:
        return None
    return low, high


def to_instant(epoch: float) -> str:
    """An epoch as a FHIR instant with millisecond precision, as HAPI writes lastUpdated."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00:00"


def now_instant() -> tuple[float, str]:
    """The current time rounded to the millisecond, as (epoch, FHIR instant)."""
    epoch = round(datetime.now(UTC).timestamp(), 3)
    return epoch, to_instant(epoch)
