"""OperationOutcome builders (http://hl7.org/fhir/R4/operationoutcome.html)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue."""

    severity: str
    code: str
    diagnostics: str
    expression: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            out["expression"] = list(self.expression)
        return out


def outcome(issues: list[Issue]) -> dict[str, Any]:
    """An OperationOutcome resource as JSON."""
    return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]}


def single(severity: str, code: str, diagnostics: str,
           expression: list[str] | None = None) -> dict[str, Any]:
    return outcome([Issue(severity, code, diagnostics, expression or [])])


def information(diagnostics: str) -> dict[str, Any]:
    return single("information", "informational", diagnostics)
