"""Webhook deliveries, pure: the body, the documented signature, what is retried and when."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from liveroom.permissions import Role
from liveroom.rooms.stage import (
    AuditAction,
    Audited,
    RoleChanged,
    RoomEnded,
    RoomState,
    RoomStatus,
    UserInfo,
)
from liveroom.webhooks import payloads
from liveroom.webhooks.model import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookPolicy,
    backoff_s,
    headers,
    make_event,
    retry_after_s,
    should_retry,
    verify,
)

SECRET = "receiver-shared-secret"


def test_the_body_is_compact_json_of_id_type_at_and_data() -> None:
    event = make_event("e1", "room_started", 1_700_000_000_000, {"title": "Café 🎤"})
    assert json.loads(event.body) == {
        "id": "e1",
        "type": "room_started",
        "at": 1_700_000_000_000,
        "data": {"title": "Café 🎤"},
    }
    assert b" " not in event.body.replace("Café 🎤".encode(), b"")  # compact, UTF-8 as is


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_as_documented() -> None:
    event = make_event("e1", "room_ended", 1, {"room_id": "r"})
    sent = headers(event, SECRET, 1_700_000_123, "liveroom/test")
    signed = b"1700000123." + event.body
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert sent[SIGNATURE_HEADER] == "sha256=" + expected
    assert sent[TIMESTAMP_HEADER] == "1700000123"
    assert (sent[EVENT_HEADER], sent[DELIVERY_HEADER]) == ("room_ended", "e1")
    assert sent["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("secret", "body", "timestamp", "now", "ok"),
    [
        (SECRET, b"{}", "1000", 1000, True),
        (SECRET, b"{}", "1000", 1300, True),  # within five minutes
        (SECRET, b"{}", "1000", 1301, False),  # a replay, later
        (SECRET, b"{} ", "1000", 1000, False),  # the body changed
        ("another secret", b"{}", "1000", 1000, False),
        (SECRET, b"{}", "999", 1000, False),  # the timestamp is signed too
        (SECRET, b"{}", "soon", 1000, False),
    ],
)
def test_verify(secret: str, body: bytes, timestamp: str, now: int, ok: bool) -> None:
    signature = "sha256=" + hmac.new(SECRET.encode(), b"1000.{}", hashlib.sha256).hexdigest()
    assert verify(secret, body, timestamp, signature, now) is ok


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (None, True),  # timeout, connection refused or reset
        (500, True),
        (502, True),
        (503, True),
        (429, True),
        (400, False),
        (401, False),
        (404, False),
        (410, False),
        (301, False),  # redirects are not followed
    ],
)
def test_what_is_retried(status: int | None, retry: bool) -> None:
    assert should_retry(status) is retry


def test_backoff_doubles_is_capped_and_jittered_down_by_at_most_half() -> None:
    policy = WebhookPolicy(backoff_s=1.0, backoff_max_s=10.0)
    assert [backoff_s(n, policy, 0.999999) for n in (1, 2, 3, 4, 5, 9)] == pytest.approx(
        [1, 2, 4, 8, 10, 10], rel=1e-5
    )
    assert [backoff_s(n, policy, 0.0) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(
    ("header", "wait"),
    [(None, None), ("3", 3.0), ("0.5", 0.5), ("9999", 60.0), ("-1", None), ("nan", None)],
)
def test_retry_after_is_honoured_up_to_the_cap(header: str | None, wait: float | None) -> None:
    assert retry_after_s(header, WebhookPolicy(backoff_max_s=60.0)) == wait
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", WebhookPolicy()) is None


ROOM = RoomState(
    id="r1",
    title="Late show",
    host="artist",
    status=RoomStatus.ENDED,
    created_at=1,
    started_at=2,
    ended_at=3,
    people=(UserInfo("artist", "Artist"), UserInfo("fan", "Fan")),
)


def test_stage_changes_become_speaker_events_and_the_end() -> None:
    events = [
        RoleChanged("fan", Role.LISTENER, Role.SPEAKER, muted=True),
        RoleChanged("mod", Role.LISTENER, Role.MODERATOR, muted=False),  # not on stage
        RoleChanged("co", Role.COHOST, Role.HOST, muted=False),  # on stage before and after
        RoleChanged("gone", Role.SPEAKER, None, muted=False),
        RoomEnded("r1"),
        Audited(AuditAction.END, "artist", None, "the host ended the room"),
    ]
    out = payloads.stage_events(ROOM, events, {"gone": "Gone Person"})
    assert [(kind, data.get("user_id")) for kind, data in out] == [
        ("speaker_joined", "fan"),
        ("speaker_left", "gone"),
        ("room_ended", None),
    ]
    joined, left, ended = (data for _, data in out)
    assert joined == {
        "room_id": "r1",
        "user_id": "fan",
        "name": "Fan",
        "role": "speaker",
        "previous_role": "listener",
    }
    assert left["name"] == "Gone Person" and left["role"] is None
    assert ended["reason"] == "the host ended the room" and ended["ended_at"] == 3
    assert ended["ended_by"] == "artist"
