"""How the server logs: text for a terminal, or one JSON object a line (``--log-format json``).

A JSON line has ``time`` (ISO 8601, UTC), ``level``, ``logger`` and ``message``, ``exception``
with the traceback when there is one, and ``room_id`` / ``user_id`` whenever the line is about
them. Those come from two places:

- a call site's ``extra={"room_id": ..., "user_id": ...}`` (room lifecycle, moderation, errors);
- :func:`log_context`, which the Socket.IO dispatcher enters for every event with the sender's
  user id and the payload's room id: every line logged while the event is handled — in any
  module, and in tasks it starts — carries them without the call site passing anything.

A call site's own ``extra`` wins over the context (a moderator's event logs the *target* user
when it says so).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import IO, Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONTEXT_FIELDS = ("room_id", "user_id")

_room_id: ContextVar[str | None] = ContextVar("liveroom_log_room_id", default=None)
_user_id: ContextVar[str | None] = ContextVar("liveroom_log_user_id", default=None)
_VARS = {"room_id": _room_id, "user_id": _user_id}


@contextlib.contextmanager
def log_context(*, room_id: str | None = None, user_id: str | None = None) -> Iterator[None]:
    """Lines logged inside (and in tasks created inside) carry these ids; ``None`` leaves an
    id as it was."""
    tokens = [
        (var, var.set(value))
        for var, value in ((_room_id, room_id), (_user_id, user_id))
        if value is not None
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Adds the current :func:`log_context` ids to every record that has none of its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _VARS.items():
            if getattr(record, name, None) is None:
                value = var.get()
                if value is not None:
                    setattr(record, name, value)
        return True


class LineFormatter(JsonFormatter):
    """python-json-logger's formatter, with the field names above and ``time`` first."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
            timestamp="time",
            reserved_attrs=[*RESERVED_ATTRS, "taskName"],
            json_ensure_ascii=False,
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {"time": log_data.pop("time", None), **log_data}


def log_handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing ``log_format`` (``text`` or ``json``) to ``stream`` (stderr)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be text or json, not {log_format!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    formatter = LineFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    handler.addFilter(ContextFilter())
    return handler


def configure_logging(level: str, log_format: str = "text") -> None:
    """The process's logging, once, at start (``liveroom serve`` and the other commands)."""
    logging.basicConfig(level=level.upper(), handlers=[log_handler(log_format)])
