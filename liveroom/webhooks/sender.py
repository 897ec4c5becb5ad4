"""Delivery: one bounded queue and a few workers per URL, retries with backoff, never blocking.

:meth:`WebhookSender.send` is synchronous and O(1) per URL: it puts the event on each URL's
queue (dropping that queue's oldest event, counted and logged, when it is full) and returns. The
workers, owned by the sender, POST each event with a per-request timeout; a timeout, a connection
error, a 5xx or a 429 is tried again after an exponential, jittered wait on the injected clock
(a 429's or 503's ``Retry-After`` is honoured up to the cap), any other answer ends it. A room
therefore never waits for a receiver, however slow or dead.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from liveroom.clock import Clock
from liveroom.webhooks.model import (
    WebhookEvent,
    WebhookPolicy,
    backoff_s,
    delivered,
    headers,
    retry_after_s,
    should_retry,
)

logger = logging.getLogger(__name__)

DROP_WARNING_INTERVAL_S = 60.0


@dataclass(slots=True)
class DeliveryCounts:
    """What happened to one URL's events since the server started."""

    delivered: int = 0
    failed: int = 0
    """Given up: refused (a 4xx), or still failing after every attempt."""
    retried: int = 0
    dropped: int = 0
    """Pushed out of a full queue before they were tried."""
    queued: int = 0


@dataclass(slots=True)
class _Target:
    url: str
    shown: str  # for logs: no query string or credentials (they may carry a token)
    queue: asyncio.Queue[WebhookEvent]
    counts: DeliveryCounts = field(default_factory=DeliveryCounts)
    unwarned_drops: int = 0
    warned_at: float | None = None


def shown_url(url: str) -> str:
    """``url`` without credentials, query or fragment: safe to log."""
    parsed = URL(url)
    return str(parsed.with_user(None).with_query(None).with_fragment(None))


class WebhookSender:
    """Delivers events to every configured URL. With no URL it does nothing at all: no session,
    no task, no request."""

    def __init__(
        self,
        urls: Sequence[str],
        secret: str | None,
        policy: WebhookPolicy,
        clock: Clock,
        *,
        user_agent: str = "liveroom",
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if urls and not secret:
            raise ValueError("webhooks need a secret to sign with (--webhook-secret)")
        self._secret = secret or ""
        self._policy = policy
        self._clock = clock
        self._user_agent = user_agent
        self._jitter = jitter
        self._targets = [
            _Target(url, shown_url(url), asyncio.Queue(policy.queue_limit))
            for url in dict.fromkeys(urls)
        ]
        self._session: aiohttp.ClientSession | None = None
        self._workers: list[asyncio.Task[None]] = []

    @property
    def enabled(self) -> bool:
        return bool(self._targets)

    def send(self, event: WebhookEvent) -> None:
        """Queue ``event`` for every URL. Never waits; a full queue loses its oldest event."""
        for target in self._targets:
            queue = target.queue
            if queue.full():
                queue.get_nowait()
                target.counts.dropped += 1
                target.unwarned_drops += 1
                self._warn_dropped(target)
            queue.put_nowait(event)

    def _warn_dropped(self, target: _Target) -> None:
        """At most one warning a minute per URL, with how many were lost since the last."""
        now = self._clock.monotonic()
        if target.warned_at is not None and now - target.warned_at < DROP_WARNING_INTERVAL_S:
            return
        logger.warning(
            "webhook queue for %s is full (%d events): dropped the %d oldest",
            target.shown,
            self._policy.queue_limit,
            target.unwarned_drops,
        )
        target.warned_at, target.unwarned_drops = now, 0

    def counts(self) -> Mapping[str, DeliveryCounts]:
        """Per URL (as configured): delivered, failed, retried, dropped and still queued."""
        return {
            t.url: DeliveryCounts(
                t.counts.delivered,
                t.counts.failed,
                t.counts.retried,
                t.counts.dropped,
                t.queue.qsize(),
            )
            for t in self._targets
        }

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if not self._targets or self._session is not None:
            return
        connector = aiohttp.TCPConnector(limit=len(self._targets) * self._policy.concurrency)
        # No cookies: a receiver cannot make the server send anything it did not sign.
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar()
        )
        for target in self._targets:
            for n in range(self._policy.concurrency):
                self._workers.append(
                    asyncio.create_task(self._work(target), name=f"webhook {target.shown} #{n}")
                )
        logger.info(
            "webhooks to %s", ", ".join(t.shown for t in self._targets) or "nowhere (none set)"
        )

    async def stop(self) -> None:
        """Cancel the workers and wait for them; events still queued are not sent."""
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        lost = sum(t.queue.qsize() for t in self._targets)
        if lost:
            logger.warning("webhooks: %d queued events not sent at shutdown", lost)

    # --- delivering -----------------------------------------------------------------------------

    async def _work(self, target: _Target) -> None:
        while True:
            event = await target.queue.get()
            try:
                await self._deliver(target, event)
            except asyncio.CancelledError:
                raise
            except Exception:
                target.counts.failed += 1
                logger.exception(
                    "webhook %s %s of room %s to %s failed",
                    event.type,
                    event.id,
                    event.room_id,
                    target.shown,
                    extra={"room_id": event.room_id},
                )

    async def _deliver(self, target: _Target, event: WebhookEvent) -> None:
        policy = self._policy
        for attempt in range(1, policy.attempts + 1):
            status, retry_after = await self._attempt(target, event)
            if status is not None and delivered(status):
                target.counts.delivered += 1
                return
            if not should_retry(status) or attempt == policy.attempts:
                target.counts.failed += 1
                logger.warning(
                    "webhook %s %s of room %s to %s not delivered (%s after %d attempt%s)",
                    event.type,
                    event.id,
                    event.room_id,
                    target.shown,
                    f"HTTP {status}" if status is not None else "no answer",
                    attempt,
                    "" if attempt == 1 else "s",
                    extra={"room_id": event.room_id},
                )
                return
            target.counts.retried += 1
            wait = backoff_s(attempt, policy, self._jitter())
            asked = retry_after_s(retry_after, policy)
            await self._clock.sleep(wait if asked is None else max(wait, asked))

    async def _attempt(self, target: _Target, event: WebhookEvent) -> tuple[int | None, str | None]:
        """One POST: the status and ``Retry-After``, or ``(None, None)`` when there was no
        answer in time (timeout, refused, reset, DNS)."""
        session = self._session
        assert session is not None, "start() the sender first"
        signed = headers(event, self._secret, self._clock.now_ms() // 1000, self._user_agent)
        timeout = aiohttp.ClientTimeout(total=self._policy.timeout_s)
        try:
            async with session.post(
                target.url, data=event.body, headers=signed, timeout=timeout, allow_redirects=False
            ) as response:
                return response.status, response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            logger.info(
                "webhook %s %s of room %s to %s: %s",
                event.type,
                event.id,
                event.room_id,
                target.shown,
                type(e).__name__,
                extra={"room_id": event.room_id},
            )
            return None, None
