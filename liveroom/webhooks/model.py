"""Webhook deliveries, pure: the body, its signature, which answers are retried and when.

The signature is ``HMAC-SHA256(secret, f"{timestamp}." + raw body)`` in hex, sent as
``X-Liveroom-Signature: sha256=<hex>`` beside ``X-Liveroom-Timestamp: <unix seconds>``. The
timestamp is part of what is signed, so a receiver that refuses old timestamps refuses a replayed
request; the delivery id (the body's ``id``, in ``X-Liveroom-Delivery``) stays the same across
retries, so a receiver that keeps the ids it has seen handles each event once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "X-Liveroom-Signature"
TIMESTAMP_HEADER = "X-Liveroom-Timestamp"
EVENT_HEADER = "X-Liveroom-Event"
DELIVERY_HEADER = "X-Liveroom-Delivery"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE_S = 300
MIN_SECRET_BYTES = 16

ROOM_STARTED = "room_started"
ROOM_ENDED = "room_ended"
SPEAKER_JOINED = "speaker_joined"
SPEAKER_LEFT = "speaker_left"
QUESTION_ASKED = "question_asked"
RECORD_BROKEN = "record_broken"
EVENT_TYPES = (
    ROOM_STARTED,
    ROOM_ENDED,
    SPEAKER_JOINED,
    SPEAKER_LEFT,
    QUESTION_ASKED,
    RECORD_BROKEN,
)


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    """How hard the server tries: per URL, ``queue_limit`` events wait (the oldest is dropped
    when a new one would not fit), ``concurrency`` are delivered at once, each request may take
    ``timeout_s``, and an event is tried ``attempts`` times in all, waiting
    ``backoff_s * 2**(n-1)`` (at most ``backoff_max_s``, jittered down by up to half) after the
    n-th failure."""

    timeout_s: float = 10.0
    attempts: int = 8
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    queue_limit: int = 1000
    concurrency: int = 4


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One event, as every URL receives it: ``body`` is encoded once and sent as is."""

    id: str
    type: str
    at: int
    body: bytes
    room_id: str | None = None  # for logs


def make_event(event_id: str, event_type: str, at_ms: int, data: Mapping[str, Any]) -> WebhookEvent:
    """``{id, type, at, data}`` as compact UTF-8 JSON."""
    payload = {"id": event_id, "type": event_type, "at": at_ms, "data": dict(data)}
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    room = data.get("room_id")
    return WebhookEvent(event_id, event_type, at_ms, body, room if isinstance(room, str) else None)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}."`` followed by the raw body."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def headers(event: WebhookEvent, secret: str, now_s: int, user_agent: str) -> dict[str, str]:
    """The request's headers for one attempt, signed at ``now_s``."""
    return {
        "Content-Type": "application/json",
        "User-Agent": user_agent,
        EVENT_HEADER: event.type,
        DELIVERY_HEADER: event.id,
        TIMESTAMP_HEADER: str(now_s),
        SIGNATURE_HEADER: SIGNATURE_PREFIX + signature(secret, now_s, event.body),
    }


def verify(
    secret: str,
    body: bytes,
    timestamp: str,
    signature_header: str,
    now_s: int,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now_s - sent_at) > tolerance_s or not signature_header.startswith(SIGNATURE_PREFIX):
        return False
    expected = signature(secret, sent_at, body)
    return hmac.compare_digest(expected, signature_header.removeprefix(SIGNATURE_PREFIX))


def should_retry(status: int | None) -> bool:
    """After a failed attempt: ``None`` is a timeout or a connection error. Server errors and
    429 are worth another try; any other 4xx (and a redirect, which is not followed) is the
    receiver refusing this event, which a retry would not change."""
    return status is None or status >= 500 or status == 429


def delivered(status: int) -> bool:
    return 200 <= status < 300


def backoff_s(failures: int, policy: WebhookPolicy, jitter: float) -> float:
    """The wait after the ``failures``-th failed attempt (1, 2, …): doubling from
    ``backoff_s``, capped, then scaled into [50 %, 100 %] by ``jitter`` ∈ [0, 1) so that a
    receiver coming back is not hit by every sender in the same instant."""
    ceiling = min(policy.backoff_max_s, policy.backoff_s * 2.0 ** max(0, failures - 1))
    return ceiling * (0.5 + jitter / 2)


def retry_after_s(value: str | None, policy: WebhookPolicy) -> float | None:
    """A 429's or 503's ``Retry-After`` in seconds (never beyond ``backoff_max_s``); an HTTP
    date or anything else is ignored (``None``)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if math.isnan(seconds) or seconds < 0:
        return None
    return min(seconds, policy.backoff_max_s)
