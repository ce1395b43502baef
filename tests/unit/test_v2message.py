"""V2Message splits ER7 itself, reading only the fields asked for: every field of every
sample message, and of messages with unusual separators, escapes and HL7 nulls, must read
as the ``hl7`` package (python-hl7) parses it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hl7
import pytest

from gateway.mapping.issues import MessageRejected
from gateway.mapping.v2message import FieldPath, Repetition, V2Message

SAMPLES = Path(__file__).parents[1] / "data" / "hl7v2"
CRAFTED = {
    "escapes": "MSH|^~\\&|A|F|B|G|20240305||ADT^A01|C1|P|2.5\r"
               "PID|1||M1^^^F^MR~S1^^^SSA^SS||O\\T\\Brien^Ann\\S\\Marie\\E\\x^\"\"||"
               "\r\rPV1|1|I|4W^412^B&x&y~~|\"\"|||D1^Reyes\\F\\Cruz",
    "other separators": "MSH#*@/%#APP#FAC#R#G#20240305##ADT*A03#C2#P#2.5\r"
                        "PID#1##M2***F*MR@M3%x##Name*Given/S/",
    "short MSH-2": "MSH|^|APP|FAC|||20240305||ADT^A01|C3|P|2.3\rPID|1||M4~M5^^^F",
    "empty fields": "MSH|^~\\&|||||||ADT^A08|C4|P|2.5\rPV1|||||||||||||||||||\rZZZ",
}


def _reference(parsed: Any, segment: Any, index: int) -> list[Repetition]:
    """How the gateway read a field from python-hl7's containers before it split ER7
    itself (unescaped, HL7 null as empty, empty repetitions left out)."""
    def text(value: Any) -> str:
        return "" if str(value) == '""' else str(parsed.unescape(str(value)))

    field = segment[index]
    if isinstance(field, str):
        return [] if field == "" else [[[text(field)]]]
    items = list(field)
    if items and all(isinstance(i, hl7.Repetition) for i in items):
        reps = [_components(i, text) for i in items]
    else:
        reps = [_components(field, text)]
    return [r for r in reps if any(any(s for s in c) for c in r)]


def _components(rep: Any, text: Any) -> Repetition:
    return [[text(c)] if isinstance(c, str) else [text(s) for s in c] for c in rep]


def _texts() -> dict[str, str]:
    found = {p.stem: p.read_bytes().decode("latin-1")
             for p in [*SAMPLES.glob("*.hl7"), *SAMPLES.glob("bridge/*.hl7")]}
    return {**found, **CRAFTED}


@pytest.mark.parametrize(("name", "text"), sorted(_texts().items()), ids=lambda v: v[:40])
def test_every_field_reads_as_python_hl7_parses_it(name: str, text: str) -> None:
    message = V2Message.parse(text)
    parsed = hl7.parse(message.text)
    seen: set[str] = set()
    for segment in parsed:
        name = str(segment[0])
        if name in seen or not name:
            continue  # V2Message reads a segment's first occurrence
        seen.add(name)
        for index in range(1, len(segment) + 2):
            expected = _reference(parsed, segment, index) if index < len(segment) else []
            assert message.repetitions(FieldPath(name, index)) == expected, (name, index)


def test_groups_see_the_header_and_their_own_segments() -> None:
    text = (SAMPLES / "north_a40_two_pairs_v25.hl7").read_text(encoding="utf-8")
    groups = V2Message.parse(text).groups("PID")
    assert len(groups) == 2
    assert groups[0].value("PID-3") != groups[1].value("PID-3")
    assert groups[0].value("MSH-10") == groups[1].value("MSH-10") != ""


@pytest.mark.parametrize("text", ["PID|1", "MSH", "", "\x00MSX|"])
def test_not_a_message_is_rejected(text: str) -> None:
    with pytest.raises(MessageRejected):
        V2Message.parse(text)
