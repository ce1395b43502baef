"""The reporting period of the measures: whole calendar months.

Syntax: ``YYYY-MM`` (one month) or ``YYYY-MM..YYYY-MM`` (first to last month, both
included; at most ``MAX_MONTHS``). Without a period, the six months up to and including
the current one (UTC). Events are placed in months by their calendar date as written in
the resource (the facility's local date), as HEDIS counts by dates, not instants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from gateway.errors import InvalidRequest

MAX_MONTHS = 36
DEFAULT_MONTHS = 6
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Period:
    """Months from ``first`` to ``last`` (each the first day of its month), inclusive."""

    first: date
    last: date

    @property
    def months(self) -> list[str]:
        """The months as ``YYYY-MM``, in order."""
        out, cursor = [], self.first
        while cursor <= self.last:
            out.append(f"{cursor:%Y-%m}")
            cursor = _next_month(cursor)
        return out

    @property
    def end(self) -> date:
        """The first day after the period."""
        return _next_month(self.last)

    def month_of(self, day: date) -> str | None:
        """The ``YYYY-MM`` bucket of a date inside the period, None outside it."""
        return f"{day:%Y-%m}" if self.first <= day < self.end else None

    def text(self) -> str:
        months = self.months
        return months[0] if len(months) == 1 else f"{months[0]}..{months[-1]}"


def parse_period(value: str | None, today: date | None = None) -> Period:
    """A ``period`` parameter; InvalidRequest naming ``period`` when it is malformed."""
    if value is None or not value.strip():
        last = (today or datetime.now(UTC).date()).replace(day=1)
        first = last
        for _ in range(DEFAULT_MONTHS - 1):
            first = _previous_month(first)
        return Period(first, last)
    start, dots, stop = value.strip().partition("..")
    first = _month(start)
    last = _month(stop) if dots else first
    if last < first:
        raise InvalidRequest(f"period {value!r} ends before it starts.", expression=["period"])
    if len(Period(first, last).months) > MAX_MONTHS:
        raise InvalidRequest(f"period {value!r} is longer than {MAX_MONTHS} months.",
                             expression=["period"])
    return Period(first, last)


def _month(text: str) -> date:
    match = _MONTH.match(text.strip())
    if match is None:
        raise InvalidRequest(f"period month {text!r} is not YYYY-MM; use YYYY-MM or "
                             "YYYY-MM..YYYY-MM.", expression=["period"])
    return date(int(match[1]), int(match[2]), 1)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _previous_month(day: date) -> date:
    return date(day.year - (day.month == 1), (day.month - 2) % 12 + 1, 1)
