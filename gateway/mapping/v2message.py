"""An HL7 v2 message split once and read by field path.

Paths are written the way HL7 v2 documents them: ``PV1-19`` (field), ``PV1-19.4`` (component),
``PID-3.4.2`` (subcomponent). Every value comes back unescaped (HL7 v2.5 section 2.7.4) and as
nested lists of strings.

Splitting follows the ``hl7`` package's parser (python-hl7 ``hl7/parser.py``): separators from
MSH-1/MSH-2 with the same defaults, MSH-1 and MSH-2 kept whole, segments on CR. It splits
only the fields the mapping reads, when it reads them, instead of building a container for
every element of the message up front, which cost more than the rest of the mapping; the
``hl7`` package still unescapes (``hl7.util.unescape``), and a unit test checks that both
read every sample message the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import NamedTuple

from hl7.util import unescape

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
    @lru_cache(maxsize=1024)
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


class Syntax(NamedTuple):
    """The separators a message declares in MSH-1/MSH-2 (HL7 v2.5 section 2.5.4), shaped as
    ``hl7.util.unescape`` reads them: ``separators`` = segment, field, repetition,
    component, subcomponent."""

    separators: str
    esc: str

    @property
    def field(self) -> str:
        return self.separators[1]

    @property
    def repetition(self) -> str:
        return self.separators[2]

    @property
    def component(self) -> str:
        return self.separators[3]

    @property
    def subcomponent(self) -> str:
        return self.separators[4]

    @classmethod
    def of(cls, text: str) -> Syntax:
        """As python-hl7's ``create_parse_plan``: defaults for what MSH-2 leaves out."""
        field = text[3]
        declared = text[3:text.find(field, 4)]
        encoding = [declared[i] if len(declared) > i else default
                    for i, default in ((2, "~"), (1, "^"), (4, "&"), (3, "\\"))]
        return cls("\r" + field + "".join(encoding[:3]), encoding[3])


Segment = list[str]  # the segment id, then each field as written
_HEADER_SEGMENTS = ("MSH", "BHS", "FHS")


class V2Message:
    """Read access to one split message; segments are looked up by their first occurrence."""

    def __init__(self, syntax: Syntax, text: str, segments: list[Segment]) -> None:
        self.syntax = syntax
        self.text = text
        self._all = segments
        self._segments: dict[str, Segment] = {}
        for segment in self._all:
            self._segments.setdefault(segment[0], segment)
        self._fields: dict[tuple[int, int], list[Repetition]] = {}

    def groups(self, start: str) -> list[V2Message]:
        """One view per repetition of the segment group that begins with ``start`` (e.g. the
        PID/PD1/MRG/PV1 groups of ADT_A39, HL7 v2.5 section 3.3.40), each also seeing the
        segments before the first group (MSH, EVN)."""
        names = [segment[0] for segment in self._all]
        if start not in names:
            return [self]
        first = names.index(start)
        starts = [i for i, name in enumerate(names) if name == start] + [len(names)]
        head = self._all[:first]
        return [V2Message(self.syntax, self.text, head + self._all[a:b])
                for a, b in pairwise(starts)]

    @classmethod
    def parse(cls, text: str) -> V2Message:
        """Split ER7 text; anything that is not an HL7 v2 message is rejected (AR)."""
        normalized = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r\x00 ")
        if not normalized.startswith("MSH"):
            raise MessageRejected("The message does not start with an MSH segment.",
                                  location="MSH", hl7_error_code="100")
        # python-hl7 strips whitespace before reading the separators
        stripped = normalized.strip()
        if len(stripped) < 4:
            raise MessageRejected("The message cannot be parsed: MSH has no field separator.",
                                  location="MSH", hl7_error_code="102")
        syntax = Syntax.of(stripped)
        return cls(syntax, normalized,
                   [_segment(line, syntax) for line in stripped.split("\r")])

    def has(self, segment: str) -> bool:
        return segment in self._segments

    def repetitions(self, path: str | FieldPath) -> list[Repetition]:
        """Every repetition of a field, each as components -> subcomponents (split once per
        field; callers only read them)."""
        where = path if isinstance(path, FieldPath) else FieldPath.parse(path)
        segment = self._segments.get(where.segment)
        if segment is None or len(segment) <= where.field:
            return []
        key = (id(segment), where.field)
        found = self._fields.get(key)
        if found is None:
            found = self._split_field(segment, where.field)
            self._fields[key] = found
        return found

    def _split_field(self, segment: Segment, index: int) -> list[Repetition]:
        raw = segment[index]
        if not raw:
            return []
        if index <= 2 and segment[0] in _HEADER_SEGMENTS:  # MSH-1, MSH-2: the separators
            return [[[self._text(raw)]]]
        syntax = self.syntax
        reps = [[[self._text(s) for s in comp.split(syntax.subcomponent)]
                 for comp in rep.split(syntax.component)]
                for rep in raw.split(syntax.repetition)]
        return [r for r in reps if any(any(s for s in c) for c in r)]

    def _text(self, value: str) -> str:
        """Unescaped text; the HL7 null ``""`` (v2.5 section 2.5.3: delete the value) is
        read as empty, so it never becomes a FHIR value."""
        if value == '""':
            return ""
        return value if self.syntax.esc not in value else str(unescape(self.syntax, value))

    def value(self, path: str | FieldPath, repetition: int = 0) -> str:
        """One string (first repetition unless told), empty when absent."""
        where = path if isinstance(path, FieldPath) else FieldPath.parse(path)
        reps = self.repetitions(where)
        if len(reps) <= repetition:
            return ""
        return component(reps[repetition], where.component or 1, where.subcomponent or 1)


def _segment(line: str, syntax: Syntax) -> Segment:
    """A segment's fields as written; for MSH, MSH-1 and MSH-2 are fields 1 and 2."""
    name = line[:3]
    if name in _HEADER_SEGMENTS:
        end = line.find(syntax.field, 4)
        rest = line[end + 1:] if end >= 0 else ""
        head = [name, line[3], line[4:end] if end >= 0 else line[4:-1]]
        return head + rest.split(syntax.field) if rest else head
    return line.split(syntax.field)


def component(rep: Repetition, index: int, sub: int = 1) -> str:
    """Component ``index`` (1-based) of a repetition, subcomponent ``sub``; '' if absent."""
    if len(rep) < index or len(rep[index - 1]) < sub:
        return ""
    return rep[index - 1][sub - 1]


def subcomponents(rep: Repetition, index: int) -> list[str]:
    return rep[index - 1] if len(rep) >= index else []
