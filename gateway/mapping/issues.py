"""What a mapping reports: issues (kept, reported in the ACK) and errors (the message cannot
be mapped: AE with an ERR segment naming the field, HL7 v2.5 chapter 2.14.5 ERR-2)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import GatewayError


@dataclass(frozen=True)
class MappingIssue:
    """A problem found while mapping one message; ``location`` is an HL7 v2 field
    (``PV1-36``) so the sender can find it. Warnings never stop the message."""

    location: str
    message: str
    severity: str = "warning"


class MappingError(GatewayError):
    """The message was understood but cannot be mapped (HL7 table 0008: AE).

    ``location`` names the HL7 v2 field at fault; ``hl7_error_code`` is an HL7 table 0357
    code (101 required field missing, 103 table value not found, 207 application error).
    """

    status = 422
    code = "processing"
    ack_code = "AE"

    def __init__(self, message: str, *, location: str = "", hl7_error_code: str = "207",
                 issues: list[MappingIssue] | None = None) -> None:
        super().__init__(message, expression=[location] if location else [])
        self.location = location
        self.hl7_error_code = hl7_error_code
        self.issues_found = issues or []


class MessageRejected(GatewayError):
    """The message cannot be parsed or is not a supported type (HL7 table 0008: AR).

    ``hl7_error_code`` is from HL7 table 0357 (100 segment sequence error, 200 unsupported
    message type, 201 unsupported event code, 102 data type error).
    """

    status = 400
    code = "structure"
    ack_code = "AR"

    def __init__(self, message: str, *, location: str = "", hl7_error_code: str = "200") -> None:
        super().__init__(message, expression=[location] if location else [])
        self.location = location
        self.hl7_error_code = hl7_error_code


class MappingFileError(ValueError):
    """A mapping file is missing, malformed or refers to something that does not exist."""
