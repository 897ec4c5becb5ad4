"""The one error hierarchy.

Domain code raises a kind of :class:`LiveroomError`; it never names an HTTP status or an ack
shape. :func:`error_body` and :data:`HTTP_STATUS` are the single place where an error becomes
what a client sees, for Socket.IO acks and HTTP replies alike.
"""

from __future__ import annotations

from typing import Any, ClassVar


class LiveroomError(Exception):
    """A refusal the client is told about. ``code`` is one of PROTOCOL.md's error codes."""

    code: ClassVar[str] = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def extras(self) -> dict[str, Any]:
        """Fields added to ``error`` beside ``code`` and ``message``."""
        return {}


class Forbidden(LiveroomError):
    """The role or authority does not allow it (also: banned, not a member)."""

    code = "forbidden"


class NotFound(LiveroomError):
    """An id of the right type that does not exist."""

    code = "not_found"


class Invalid(LiveroomError):
    """Missing, extra or wrong-typed fields, out-of-range values, unknown events."""

    code = "invalid"


class Conflict(LiveroomError):
    """The state does not allow it now."""

    code = "conflict"


class InvalidState(Conflict):
    """A state machine refused a transition, e.g. "cannot approve: question is rejected"."""


class Full(LiveroomError):
    """A limit is reached."""

    code = "full"


class RateLimited(LiveroomError):
    """Too often; the client may retry after ``retry_after`` seconds."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def extras(self) -> dict[str, Any]:
        # Whole tenths of a second: precise enough to wait on, and stable in logs.
        return {"retry_after": max(0.1, round(self.retry_after + 0.049, 1))}


class Gone(LiveroomError):
    """The room has ended."""

    code = "gone"


class Unauthorized(LiveroomError):
    """No valid credentials. HTTP only: a Socket.IO connection without them is refused."""

    code = "unauthorized"


class Internal(LiveroomError):
    """A server fault; ``message`` carries the id under which it was logged."""

    code = "internal"


ERROR_KINDS: tuple[type[LiveroomError], ...] = (
    Forbidden,
    NotFound,
    Invalid,
    Conflict,
    Full,
    RateLimited,
    Gone,
    Unauthorized,
    Internal,
)

HTTP_STATUS: dict[str, int] = {
    "forbidden": 403,
    "not_found": 404,
    "invalid": 400,
    "conflict": 409,
    "full": 409,
    "rate_limited": 429,
    "gone": 410,
    "unauthorized": 401,
    "internal": 500,
}


def error_body(error: LiveroomError) -> dict[str, Any]:
    """The ``{"ok": false, "error": {...}}`` object shared by acks and HTTP replies."""
    return {"ok": False, "error": {"code": error.code, "message": error.message, **error.extras()}}
