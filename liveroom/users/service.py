"""The user directory: remembers who connected, written to SQL in batches (about once a second).

A connect costs a dict write, never a transaction: 10,000 fans arriving at once become a handful
of upserts. The pending batch is bounded; if SQL falls that far behind, the oldest sightings are
dropped (a later sighting of the same user rewrites them) rather than growing without limit.
"""

from __future__ import annotations

import asyncio
import logging

from liveroom.auth import Identity
from liveroom.clock import Clock
from liveroom.tasks import Periodic
from liveroom.users.store import SqlUserStore, UserRecord

logger = logging.getLogger(__name__)


class UserDirectory:
    def __init__(
        self,
        store: SqlUserStore,
        clock: Clock,
        flush_interval_s: float = 1.0,
        max_pending: int = 50_000,
    ) -> None:
        self._store = store
        self._clock = clock
        self._max_pending = max_pending
        self._pending: dict[str, UserRecord] = {}
        self._writing: dict[str, UserRecord] = {}
        """The batch being written: neither pending nor surely in SQL yet."""
        self._flush_lock = asyncio.Lock()
        self._flusher = Periodic(
            "user-directory-flush", flush_interval_s, self.flush, clock, final=True
        )

    def seen(self, identity: Identity) -> None:
        now = self._clock.now_ms()
        self._pending.pop(identity.user_id, None)  # re-insert: the dict stays oldest-first
        self._pending[identity.user_id] = UserRecord(
            id=identity.user_id,
            name=identity.name,
            verified=identity.verified,
            guest=identity.guest,
            market=identity.market,
            created_at=now,
            last_seen_at=now,
        )
        if len(self._pending) > self._max_pending:
            oldest = next(iter(self._pending))
            del self._pending[oldest]
            logger.warning("user directory behind: dropped the sighting of user %s", oldest)

    async def flush(self) -> None:
        async with self._flush_lock:
            batch, self._pending = self._pending, {}
            if not batch:
                return
            self._writing = batch
            try:
                await self._store.upsert(batch.values())
            except Exception:
                # Keep the batch for the next attempt, newer sightings winning.
                self._pending = {**batch, **self._pending}
                raise
            finally:
                self._writing = {}

    async def find(self, user_id: str) -> UserRecord | None:
        """The user as last seen (a sighting not written yet counts); ``None``: never seen."""
        seen = self._pending.get(user_id) or self._writing.get(user_id)
        return seen if seen is not None else await self._store.get(user_id)

    def start(self) -> None:
        self._flusher.start()

    async def stop(self) -> None:
        """Stop flushing on a timer and write what is pending."""
        await self._flusher.stop()
