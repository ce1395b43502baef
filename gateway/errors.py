"""One exception root for the gateway.

Each subclass knows its FHIR issue code (http://hl7.org/fhir/R4/valueset-issue-type.html) and
HTTP status, so the API turns any of them into an OperationOutcome in one place.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""

    status: int = 500
    code: str = "exception"
    severity: str = "error"

    def __init__(self, message: str, *, expression: list[str] | None = None,
                 status: int | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None,
                 details: list[tuple[str, list[str]]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression or []
        self.headers = headers or {}
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        # Further (message, expression) pairs when one request has several faults.
        self.details = details or []

    def issues(self) -> list[dict[str, object]]:
        """The OperationOutcome.issue entries describing this error."""
        pairs = self.details or [(self.message, self.expression)]
        out: list[dict[str, object]] = []
        for message, expression in pairs:
            issue: dict[str, object] = {"severity": self.severity, "code": self.code,
                                        "diagnostics": message}
            if expression:
                issue["expression"] = expression
            out.append(issue)
        return out


class InvalidRequest(GatewayError):
    """The request itself is malformed (bad parameter, bad header, bad Bundle shape)."""

    status = 400
    code = "invalid"


class InvalidResource(GatewayError):
    """The resource in the body does not conform to FHIR R4."""

    status = 400
    code = "invalid"


class UnprocessableResource(GatewayError):
    """A well-formed resource that breaks a business rule (e.g. a reference to nothing)."""

    status = 422
    code = "processing"


class NotFound(GatewayError):
    status = 404
    code = "not-found"


class Gone(GatewayError):
    """The resource existed and was deleted (FHIR R4 http.html#read: 410). ``rid`` is its
    row, for the access check that must answer 404 instead where the reader may not know
    it existed."""

    status = 410
    code = "deleted"
    rid: int | None = None


class Conflict(GatewayError):
    status = 409
    code = "conflict"


class PreconditionFailed(GatewayError):
    """If-Match names a stale version, or a conditional operation matched too many."""

    status = 412
    code = "conflict"


class NotSupported(GatewayError):
    status = 400
    code = "not-supported"


class MethodNotAllowed(GatewayError):
    status = 405
    code = "not-supported"


class NotAcceptable(GatewayError):
    status = 406
    code = "not-supported"


class UnsupportedMediaType(GatewayError):
    status = 415
    code = "not-supported"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "too-costly"


class MultipleMatches(PreconditionFailed):
    """A conditional create/update/delete matched more than one resource."""

    code = "multiple-matches"


class Unauthorized(GatewayError):
    """No valid access token (RFC 6750 section 3: 401 with WWW-Authenticate)."""

    status = 401
    code = "login"


class Forbidden(GatewayError):
    """The token's scopes or the client's role do not allow this interaction."""

    status = 403
    code = "forbidden"


class TooManyRequests(GatewayError):
    """The client's rate limit is spent (RFC 6585 section 4: 429 with Retry-After)."""

    status = 429
    code = "throttled"
