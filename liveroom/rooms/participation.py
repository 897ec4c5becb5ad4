"""Participation history: who was in which room, with what role, from when to when.

High volume (every join and leave of every listener), so it is batched: sessions are kept in
memory and written about once a second, one transaction per flush, never one per join. A
session opened and closed within one interval is one insert. Pending work is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveroom.clock import Clock
from liveroom.db.models import ParticipationRow
from liveroom.tasks import Periodic

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Session:
    id: str
    room_id: str
    user_id: str
    role: str
    market: str | None
    joined_at: int
    left_at: int | None = None
    written: bool = False


class ParticipationLog:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        flush_interval_s: float = 1.0,
        max_pending: int = 200_000,
    ) -> None:
        self._db = sessions
        self._clock = clock
        self._max_pending = max_pending
        self._new: dict[str, _Session] = {}  # not yet inserted
        self._closed: dict[str, int] = {}  # inserted earlier, left_at to write
        self._open: dict[tuple[str, str], _Session] = {}  # (room, user) → current session
        self._lock = asyncio.Lock()
        self._flusher = Periodic(
            "participation-flush", flush_interval_s, self.flush, clock, final=True
        )

    def joined(self, room_id: str, user_id: str, role: str, market: str | None) -> None:
        if (room_id, user_id) in self._open:
            return
        if len(self._new) + len(self._closed) >= self._max_pending:
            logger.warning(
                "participation log behind: not recording user %s in room %s", user_id, room_id
            )
            return
        session = _Session(uuid.uuid4().hex, room_id, user_id, role, market, self._clock.now_ms())
        self._open[(room_id, user_id)] = session
        self._new[session.id] = session

    def left(self, room_id: str, user_id: str) -> None:
        session = self._open.pop((room_id, user_id), None)
        if session is None:
            return
        session.left_at = self._clock.now_ms()
        if not session.written:
            return  # still in _new: inserted complete
        self._closed[session.id] = session.left_at

    def close_all(self) -> None:
        """Every open session ends now (shutdown); members who come back start new ones."""
        for room, user in list(self._open):
            self.left(room, user)

    def close_room(self, room_id: str) -> None:
        for room, user in [k for k in self._open if k[0] == room_id]:
            self.left(room, user)

    async def flush(self) -> None:
        async with self._lock:
            new, closed = self._new, self._closed
            self._new, self._closed = {}, {}
            if not new and not closed:
                return
            # Rows are taken now: a leave during the write is noticed by comparing afterwards.
            rows = [
                {
                    "id": s.id,
                    "room_id": s.room_id,
                    "user_id": s.user_id,
                    "role": s.role,
                    "market": s.market,
                    "joined_at": s.joined_at,
                    "left_at": s.left_at,
                }
                for s in new.values()
            ]
            try:
                await self._write(rows, closed)
            except Exception:
                self._new = {**new, **self._new}
                self._closed = {**closed, **self._closed}
                raise
            for row in rows:
                session = new[str(row["id"])]
                session.written = True
                if session.left_at is not None and session.left_at != row["left_at"]:
                    self._closed[session.id] = session.left_at

    async def _write(self, rows: list[dict[str, Any]], closed: dict[str, int]) -> None:
        async with self._db.begin() as db:
            insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
            for start in range(0, len(rows), 1000):
                await db.execute(
                    insert(ParticipationRow)
                    .values(rows[start : start + 1000])
                    .on_conflict_do_nothing()
                )
            if closed:  # one statement for every leave since the last flush (executemany)
                table = cast("Table", ParticipationRow.__table__)
                await db.execute(
                    update(table)
                    .where(table.c.id == bindparam("session_id"))
                    .values(left_at=bindparam("closed_at")),
                    [{"session_id": k, "closed_at": v} for k, v in closed.items()],
                )

    def start(self) -> None:
        self._flusher.start()

    async def stop(self) -> None:
        await self._flusher.stop()
