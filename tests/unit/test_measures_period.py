"""The measures' period syntax: YYYY-MM or YYYY-MM..YYYY-MM, whole months, default the last
six months."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.errors import InvalidRequest
from gateway.timeline.period import parse_period


@pytest.mark.parametrize(("text", "months"), [
    ("2026-03", ["2026-03"]),
    ("2025-11..2026-02", ["2025-11", "2025-12", "2026-01", "2026-02"]),
    (" 2026-12..2026-12 ", ["2026-12"]),
])
def test_months_of_a_period(text: str, months: list[str]) -> None:
    period = parse_period(text)
    assert period.months == months
    assert period.text() == (months[0] if len(months) == 1 else f"{months[0]}..{months[-1]}")


def test_default_is_the_last_six_months_including_this_one() -> None:
    period = parse_period(None, today=date(2026, 3, 17))
    assert period.months == ["2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03"]


def test_a_date_falls_in_its_month_or_outside() -> None:
    period = parse_period("2026-01..2026-02")
    assert period.month_of(date(2026, 2, 28)) == "2026-02"
    assert period.month_of(date(2026, 3, 1)) is None
    assert period.month_of(date(2025, 12, 31)) is None


@pytest.mark.parametrize("text", ["2026", "2026-00", "2026-13", "2026-1", "26-01",
                                  "2026-03..", "2026-03..2026-02", "2020-01..2023-01",
                                  "2026-01/2026-02"])
def test_malformed_periods_are_refused_naming_the_parameter(text: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_period(text)
    assert caught.value.expression == ["period"]
