"""Event payloads, parsed at the edge into typed, frozen objects before any service sees them."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from liveroom.errors import Invalid

MAX_REPORTED_PROBLEMS = 3


class Payload(BaseModel):
    """Base of every event payload: unknown fields refused, no type coercion, immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, str_max_length=10_000)


P = TypeVar("P", bound=Payload)


def parse(model: type[P], data: Any) -> P:
    """``data`` as a ``model``, or :class:`Invalid` naming the fields that are wrong."""
    if not isinstance(data, dict):
        raise Invalid(f"payload must be an object, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {_message(err)}"
            for err in e.errors()[:MAX_REPORTED_PROBLEMS]
        ]
        more = e.error_count() - len(problems)
        suffix = f" (and {more} more)" if more > 0 else ""
        raise Invalid("; ".join(problems) + suffix) from None


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "required"
    return str(err["msg"]).lower()


class TimeSync(Payload):
    t0: float
    rtt: float | None = Field(default=None, ge=0, le=60_000, allow_inf_nan=False)
    """The client's latest round trip (ms), for scheduling synchronized starts."""
