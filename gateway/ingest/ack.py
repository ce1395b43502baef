"""Build HL7 v2 acknowledgments from the inbound MSH (HL7 v2.5 section 2.9 and 2.14.8).

MSA-1 is from HL7 table 0008: AA accepted, AE error (stored, could not be applied), AR
rejected (unparseable or unsupported). Each error or warning becomes an ERR segment naming
its field (ERR-2 location, ERR-3 HL7 table 0357 code, ERR-4 severity from table 0516); before
v2.5 the location and code share ERR-1 (ELD). Enhanced mode (MSH-15/16, table 0155) decides
whether an ACK is sent at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

_ERROR_TEXT = {"100": "Segment sequence error", "101": "Required field missing",
               "102": "Data type error", "103": "Table value not found",
               "200": "Unsupported message type", "201": "Unsupported event code",
               "207": "Application internal error"}
Escape = Callable[[str], str]
_LOCATION = re.compile(r"^([A-Z][A-Z0-9]{2})(?:-(\d+)(?:\.(\d+))?)?")


@dataclass(frozen=True)
class AckError:
    location: str
    message: str
    code: str = "207"
    severity: str = "E"  # HL7 table 0516: E error, W warning


@dataclass
class InboundMsh:
    """The MSH fields an ACK answers (taken from a parsed message, or split from raw text
    when the message could not be parsed)."""

    field_sep: str = "|"
    encoding: str = "^~\\&"
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    trigger: str = ""
    control_id: str = ""
    processing_id: str = "P"
    version: str = "2.5"
    accept_ack: str = ""
    application_ack: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_text(cls, text: str) -> InboundMsh:
        """Best effort over raw text, for ACKing a message the parser refused."""
        line = text.lstrip("\x0b\r\n ").split("\r", 1)[0].split("\n", 1)[0]
        if not line.startswith("MSH") or len(line) < 8:
            return cls()
        sep = line[3]
        fields = line.split(sep)
        encoding = fields[1] if len(fields) > 1 and len(fields[1]) >= 4 else "^~\\&"

        def get(index: int) -> str:
            return fields[index - 1] if len(fields) >= index else ""

        component = encoding[0]
        return cls(sep, encoding, get(3), get(4), get(5), get(6),
                   get(9).split(component)[1] if component in get(9) else "", get(10),
                   get(11) or "P", get(12).split(component)[0] or "2.5", get(15), get(16))


def ack_wanted(msh: InboundMsh, code: str) -> bool:
    """Original mode (no MSH-15/16) always answers; enhanced mode follows MSH-16 (table
    0155: AL always, NE never, ER only on error, SU only on success)."""
    mode = msh.application_ack or msh.accept_ack
    if not mode:
        return True
    return {"AL": True, "NE": False, "ER": code != "AA", "SU": code == "AA"}.get(mode, True)


def build_ack(msh: InboundMsh, code: str, control_id: str, *, text: str = "",
              errors: list[AckError] | None = None, now: datetime | None = None) -> str:
    """The ACK message (segments joined by CR, no MLLP framing)."""
    sep, comp = msh.field_sep, msh.encoding[0]
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S+0000")
    esc = _escaper(msh)
    # MSH-3..6 are swapped over from the inbound MSH as sent (already encoded).
    header = ["MSH", msh.encoding, msh.receiving_application, msh.receiving_facility,
              msh.sending_application, msh.sending_facility, stamp, "",
              comp.join(["ACK", msh.trigger, "ACK"]) if msh.trigger else "ACK",
              control_id, msh.processing_id or "P", msh.version or "2.5"]
    old = _before_25(msh.version)
    msa = ["MSA", code, msh.control_id] + ([esc(text)] if old and text else [])
    segments = ["MSH" + sep + sep.join(header[1:]), sep.join(msa)]
    segments += [_err(msh, e, old, esc) for e in errors or []]
    return "\r".join(segments) + "\r"


def _err(msh: InboundMsh, error: AckError, old: bool, esc: Escape) -> str:
    sep, comp, sub = msh.field_sep, msh.encoding[0], (msh.encoding + "~\\&")[3]
    match = _LOCATION.match(error.location)
    segment, field_no, comp_no = match.groups() if match else ("", None, None)
    code_text = _ERROR_TEXT.get(error.code, "Application error")
    if old:
        eld = comp.join([segment, "1" if segment else "", field_no or "",
                         sub.join([error.code, code_text])])
        return sep.join(["ERR", eld])
    location = comp.join(p for p in [segment, "1" if segment else "", field_no or "",
                                     "1" if field_no else "", comp_no or ""]).rstrip(comp)
    return sep.join(["ERR", "", location, comp.join([error.code, code_text, "HL70357"]),
                     error.severity, "", "", "", esc(error.message)])


def _before_25(version: str) -> bool:
    parts = re.findall(r"\d+", version or "")
    return len(parts) >= 2 and (int(parts[0]), int(parts[1])) < (2, 5)


def _escaper(msh: InboundMsh) -> Escape:
    """HL7 v2.5 section 2.7.4 escapes for text placed into an ACK field."""
    comp, rep, escape, sub = (msh.encoding + "~\\&")[:4]
    table = {escape: f"{escape}E{escape}", msh.field_sep: f"{escape}F{escape}",
             comp: f"{escape}S{escape}", rep: f"{escape}R{escape}", sub: f"{escape}T{escape}",
             "\r": " ", "\n": " "}

    def esc(text: str) -> str:
        return "".join(table.get(ch, ch) for ch in text)

    return esc
