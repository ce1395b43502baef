"""A timeline entry: what happened, when, and the resource version it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.fhir.dates import to_instant

# Tones tell the pages which colour an entry gets; the JSON carries them too.
NEUTRAL, GOOD, WARNING, BAD = "neutral", "good", "warning", "bad"


@dataclass(frozen=True)
class Entry:
    """One thing that happened to the patient.

    ``time`` is when it happened (the clinical time where the resource records one, e.g. an
    Encounter's period.end for a discharge), else when the gateway recorded it (the
    version's meta.lastUpdated, ``recorded``)."""

    time: float
    kind: str
    summary: str
    reference: str
    recorded: float
    tone: str = NEUTRAL
    details: tuple[str, ...] = field(default=())

    @property
    def key(self) -> tuple[float, str, str]:
        """The sort and paging key: newest first, ties broken by reference and kind."""
        return (self.time, self.reference, self.kind)

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"time": to_instant(self.time), "kind": self.kind,
                               "summary": self.summary, "reference": self.reference,
                               "recorded": to_instant(self.recorded), "tone": self.tone}
        if self.details:
            out["details"] = list(self.details)
        return out
