"""Users in SQL: an upsert of many at once, and a read by id."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveroom.db.models import UserRow

UPSERT_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    name: str
    verified: bool
    guest: bool
    market: str | None
    created_at: int
    last_seen_at: int


class SqlUserStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def upsert(self, users: Iterable[UserRecord]) -> None:
        """Insert new users and refresh name, verification, market and last-seen of known ones,
        in one transaction. ``created_at`` of a known user is kept."""
        rows = [
            {
                "id": u.id,
                "name": u.name,
                "verified": u.verified,
                "guest": u.guest,
                "market": u.market,
                "created_at": u.created_at,
                "last_seen_at": u.last_seen_at,
            }
            for u in users
        ]
        if not rows:
            return
        async with self._sessions.begin() as session:
            dialect = session.get_bind().dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            # Chunks keep each statement under the drivers' bound-parameter limits (32,767).
            for start in range(0, len(rows), UPSERT_CHUNK):
                stmt = insert(UserRow).values(rows[start : start + UPSERT_CHUNK])
                stmt = stmt.on_conflict_do_update(
                    index_elements=[UserRow.id],
                    set_={
                        "name": stmt.excluded.name,
                        "verified": stmt.excluded.verified,
                        "market": stmt.excluded.market,
                        "last_seen_at": stmt.excluded.last_seen_at,
                    },
                )
                await session.execute(stmt)

    async def get(self, user_id: str) -> UserRecord | None:
        async with self._sessions() as session:
            row = await session.scalar(select(UserRow).where(UserRow.id == user_id))
        if row is None:
            return None
        return UserRecord(
            id=row.id,
            name=row.name,
            verified=row.verified,
            guest=row.guest,
            market=row.market,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
        )
