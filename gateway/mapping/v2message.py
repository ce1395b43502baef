"""An HL7 v2 message parsed once (with the ``hl7`` package) and read by field path.

Paths are written the way HL7 v2 documents them: ``PV1-19`` (field), ``PV1-19.4`` (component),
``PID-3.4.2`` (subcomponent). Every value comes back unescaped (HL7 v2.5 section 2.7.4) and as
nested lists of strings, so the mapping never touches the library's containers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import hl7
from hl7.exceptions import ParseException

from gateway.mapping.issues import MessageRejected

_PATH = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d+)(?:\.(\d+))?(?:\.(\d+))?$")
Repetition = list[list[str]]  # components -> subcomponents


@dataclass(frozen=True)
class FieldPath:
    segment: str
    field: int
    component: int | None = None
    subcomponent: int | None = None

    @classmethod
    def parse(cls, text: str) -> FieldPath:
        match = _PATH.match(text.strip())
        if match is None:
            raise ValueError(f"not an HL7 v2 field path: {text!r} (expected e.g. PV1-19.4)")
        seg, field, comp, sub = match.groups()
        return cls(seg, int(field), int(comp) if comp else None, int(sub) if sub else None)

    def __str__(self) -> str:
        text = f"{self.segment}-{self.field}"
        if self.component:
            text += f".{self.component}"
        if self.subcomponent:
            text += f".{self.subcomponent}"
        return text


class V2Message:
    """Read access to one parsed message; segments are looked up by their first occurrence."""

    def __init__(self, message: Any, text: str, segments: list[Any] | None = None) -> None:
        self._message = message
        self.text = text
        self._all = list(message) if segments is None else segments
        self._segments: dict[str, Any] = {}
        for segment in self._all:
            self._segments.setdefault(str(segment[0]), segment)

    def groups(self, start: str) -> list[V2Message]:
        """One view per repetition of the segment group that begins with ``start`` (e.g. the
        PID/PD1/MRG/PV1 groups of ADT_A39, HL7 v2.5 section 3.3.40), each also seeing the
        segments before the first group (MSH, EVN)."""
        names = [str(segment[0]) for segment in self._all]
        if start not in names:
            return [self]
        first = names.index(start)
        starts = [i for i, name in enumerate(names) if name == start] + [len(names)]
        head = self._all[:first]
        return [V2Message(self._message, self.text, head + self._all[a:b])
                for a, b in pairwise(starts)]

    @classmethod
    def parse(cls, text: str) -> V2Message:
        """Parse ER7 text; anything that is not an HL7 v2 message is rejected (AR)."""
        normalized = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r\x00 ")
        if not normalized.startswith("MSH"):
            raise MessageRejected("The message does not start with an MSH segment.",
                                  location="MSH", hl7_error_code="100")
        try:
            return cls(hl7.parse(normalized), normalized)
        except (ParseException, IndexError, ValueError, KeyError) as error:
            raise MessageRejected(f"The message cannot be parsed: {error}",
                                  location="MSH", hl7_error_code="102") from None

    def has(self, segment: str) -> bool:
        return segment in self._segments

    def repetitions(self, path: str | FieldPath) -> list[Repetition]:
        """Every repetition of a field, each as components -> subcomponents."""
        where = path if isinstance(path, FieldPath) else FieldPath.parse(path)
        segment = self._segments.get(where.segment)
        if segment is None or len(segment) <= where.field:
            return []
        reps = _repetitions(segment[where.field])
        return [[[self._text(s) for s in comp] for comp in rep] for rep in reps]

    def _text(self, value: str) -> str:
        """Unescaped text; the HL7 null ``""`` (v2.5 section 2.5.3: delete the value) is
        read as empty, so it never becomes a FHIR value."""
        return "" if value == '""' else str(self._message.unescape(value))

    def value(self, path: str | FieldPath, repetition: int = 0) -> str:
        """One string (first repetition unless told), empty when absent."""
        where = path if isinstance(path, FieldPath) else FieldPath.parse(path)
        reps = self.repetitions(where)
        if len(reps) <= repetition:
            return ""
        return component(reps[repetition], where.component or 1, where.subcomponent or 1)


def component(rep: Repetition, index: int, sub: int = 1) -> str:
    """Component ``index`` (1-based) of a repetition, subcomponent ``sub``; '' if absent."""
    if len(rep) < index or len(rep[index - 1]) < sub:
        return ""
    return rep[index - 1][sub - 1]


def subcomponents(rep: Repetition, index: int) -> list[str]:
    return rep[index - 1] if len(rep) >= index else []


def _repetitions(field: Any) -> list[Repetition]:
    if isinstance(field, str):
        return [] if field == "" else [[[field]]]
    items = list(field)
    if items and all(isinstance(i, hl7.Repetition) for i in items):
        reps = [_components(i) for i in items]
    else:
        reps = [_components(field)]
    return [r for r in reps if any(any(s for s in c) for c in r)]


def _components(rep: Any) -> Repetition:
    return [[c] if isinstance(c, str) else [str(s) for s in c] for c in rep]
