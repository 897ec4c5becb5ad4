"""The sender against a real receiver on 127.0.0.1, with a fake clock for its backoff: waits
double and honour Retry-After, a full queue drops its oldest event, and stopping is prompt."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from liveroom.webhooks.model import WebhookPolicy, make_event
from liveroom.webhooks.sender import WebhookSender, shown_url
from tests.fakes import FakeClock, eventually
from tests.webhook_receiver import HANG, Receiver

SECRET = "sixteen-bytes-or-more"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


def sender_for(urls: list[str], clock: FakeClock, **policy: Any) -> WebhookSender:
    """Waits of 1, 2, 4, 8, 8… s, jittered to exactly half."""
    settings = replace(WebhookPolicy(backoff_s=1.0, backoff_max_s=8.0), **policy)
    return WebhookSender(urls, SECRET, settings, clock, jitter=lambda: 0.0)


async def test_backoff_waits_on_the_clock_doubling_then_delivers_once(
    receiver: Receiver, fake_clock: FakeClock
) -> None:
    receiver.script["/hook"] = [503, 502]
    sender = sender_for([receiver.url + "/hook"], fake_clock)
    await sender.start()
    try:
        sender.send(make_event("e1", "room_started", 1, {}))
        await receiver.until(lambda: len(receiver.requests) == 1)
        await eventually(lambda: fake_clock.sleepers == 1)
        await fake_clock.advance(0.49)  # first wait: 1 s, jittered to half
        assert len(receiver.requests) == 1
        await fake_clock.advance(0.01)
        await receiver.until(lambda: len(receiver.requests) == 2)
        await eventually(lambda: fake_clock.sleepers == 1)
        await fake_clock.advance(0.99)  # second wait: 2 s, halved
        assert len(receiver.requests) == 2
        await fake_clock.advance(0.01)
        await receiver.until(lambda: len(receiver.requests) == 3)
        await eventually(lambda: sender.counts()[receiver.url + "/hook"].delivered == 1)
    finally:
        await sender.stop()
    assert [r.status for r in receiver.requests] == [503, 502, 200]
    assert {r.headers["X-Liveroom-Delivery"] for r in receiver.requests} == {"e1"}
    counts = sender.counts()[receiver.url + "/hook"]
    assert (counts.delivered, counts.retried, counts.failed) == (1, 2, 0)


async def test_a_429_waits_as_long_as_retry_after_asks(
    receiver: Receiver, fake_clock: FakeClock
) -> None:
    receiver.script["/hook"] = [429]
    receiver.retry_after = "3"
    sender = sender_for([receiver.url + "/hook"], fake_clock)
    await sender.start()
    try:
        sender.send(make_event("e1", "question_asked", 1, {}))
        await receiver.until(lambda: len(receiver.requests) == 1)
        await eventually(lambda: fake_clock.sleepers == 1)
        await fake_clock.advance(2.9)  # its own wait would have been 0.5 s
        assert len(receiver.requests) == 1
        await fake_clock.advance(0.1)
        await receiver.until(lambda: len(receiver.requests) == 2)
    finally:
        await sender.stop()
    assert [r.status for r in receiver.requests] == [429, 200]


async def test_a_refusal_is_not_retried_and_attempts_are_bounded(
    receiver: Receiver, fake_clock: FakeClock
) -> None:
    receiver.script["/refuse"] = [400]
    receiver.script["/down"] = [500] * 10
    refuse, down = receiver.url + "/refuse", receiver.url + "/down"
    sender = sender_for([refuse, down], fake_clock, attempts=3)
    await sender.start()
    try:
        sender.send(make_event("e1", "room_ended", 1, {}))
        await eventually(lambda: sender.counts()[refuse].failed == 1)
        for _ in range(2):
            await eventually(lambda: fake_clock.sleepers == 1)
            await fake_clock.advance(8)
        await eventually(lambda: sender.counts()[down].failed == 1)
        await fake_clock.advance(60)
    finally:
        await sender.stop()
    assert len(receiver.received("/refuse")) == 1
    assert len(receiver.received("/down")) == 3


async def test_a_full_queue_drops_its_oldest_event_with_a_warning(
    receiver: Receiver, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    url = receiver.url + "/hook"
    sender = sender_for([url], fake_clock, queue_limit=3, concurrency=1)
    with caplog.at_level(logging.WARNING, logger="liveroom.webhooks.sender"):
        for n in range(5):  # before start: nothing is taken off the queue yet
            sender.send(make_event(f"e{n}", "room_started", n, {}))
    counts = sender.counts()[url]
    assert (counts.queued, counts.dropped) == (3, 2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "full" in warnings[0]  # once a minute, not once a drop
    await sender.start()
    try:
        await receiver.until(lambda: len(receiver.requests) == 3)
    finally:
        await sender.stop()
    assert [r.json["id"] for r in receiver.requests] == ["e2", "e3", "e4"]


async def test_stop_is_prompt_with_a_receiver_that_hangs(
    receiver: Receiver, fake_clock: FakeClock
) -> None:
    receiver.script["/hook"] = [HANG, HANG]
    sender = sender_for([receiver.url + "/hook"], fake_clock, timeout_s=60)
    await sender.start()
    for n in range(10):
        sender.send(make_event(f"e{n}", "speaker_joined", n, {}))
    await receiver.until(lambda: receiver.hanging == 2)
    async with asyncio.timeout(2):
        await sender.stop()


def test_no_url_means_no_sender_work_at_all() -> None:
    sender = WebhookSender([], None, WebhookPolicy(), FakeClock())
    sender.send(make_event("e", "room_started", 1, {}))
    assert not sender.enabled and sender.counts() == {}


def test_a_url_without_a_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        WebhookSender(["https://example.com/h"], None, WebhookPolicy(), FakeClock())


def test_logs_show_urls_without_their_credentials_or_query() -> None:
    assert shown_url("https://user:pw@hooks.example/in?token=abc#x") == "https://hooks.example/in"
