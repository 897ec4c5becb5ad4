"""Block lists: in memory (tests) and in SQL (the truth, across restarts), behind one Protocol."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveroom.blocks.model import BlockedUser
from liveroom.db.models import UserBlockRow, UserRow


class BlockStore(Protocol):
    async def blockers(self) -> set[str]:
        """Everyone who blocks at least one user."""
        ...

    async def blocks_of(self, blocker_id: str) -> dict[str, int]:
        """Whom ``blocker_id`` blocks, with when."""
        ...

    async def listing(self, blocker_id: str) -> list[BlockedUser]:
        """``blocker_id``'s list, latest block first, with the names the server knows now."""
        ...

    async def add(self, blocker_id: str, user: BlockedUser) -> None:
        """Block ``user`` (a block that exists already is kept as it was)."""
        ...

    async def remove(self, blocker_id: str, user_id: str) -> None: ...


def _latest_first(users: list[BlockedUser]) -> list[BlockedUser]:
    return sorted(users, key=lambda u: (-u.at, u.id))


class MemoryBlockStore:
    def __init__(self) -> None:
        self._lists: dict[str, dict[str, BlockedUser]] = {}

    async def blockers(self) -> set[str]:
        return {b for b, users in self._lists.items() if users}

    async def blocks_of(self, blocker_id: str) -> dict[str, int]:
        return {u.id: u.at for u in self._lists.get(blocker_id, {}).values()}

    async def listing(self, blocker_id: str) -> list[BlockedUser]:
        return _latest_first(list(self._lists.get(blocker_id, {}).values()))

    async def add(self, blocker_id: str, user: BlockedUser) -> None:
        self._lists.setdefault(blocker_id, {}).setdefault(user.id, user)

    async def remove(self, blocker_id: str, user_id: str) -> None:
        self._lists.get(blocker_id, {}).pop(user_id, None)


class SqlBlockStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def blockers(self) -> set[str]:
        async with self._sessions() as session:
            rows = await session.scalars(select(UserBlockRow.blocker_id).distinct())
            return set(rows)

    async def blocks_of(self, blocker_id: str) -> dict[str, int]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(UserBlockRow.blocked_id, UserBlockRow.at).where(
                    UserBlockRow.blocker_id == blocker_id
                )
            )
            return {str(user_id): int(at) for user_id, at in rows}

    async def listing(self, blocker_id: str) -> list[BlockedUser]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(
                    UserBlockRow.blocked_id,
                    func.coalesce(UserRow.name, UserBlockRow.name),
                    func.coalesce(UserRow.verified, UserBlockRow.verified),
                    UserBlockRow.at,
                )
                .outerjoin(UserRow, UserRow.id == UserBlockRow.blocked_id)
                .where(UserBlockRow.blocker_id == blocker_id)
            )
            return _latest_first([BlockedUser(i, n, bool(v), a) for i, n, v, a in rows])

    async def add(self, blocker_id: str, user: BlockedUser) -> None:
        async with self._sessions.begin() as session:
            dialect = session.get_bind().dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            await session.execute(
                insert(UserBlockRow)
                .values(
                    blocker_id=blocker_id,
                    blocked_id=user.id,
                    name=user.name,
                    verified=user.verified,
                    at=user.at,
                )
                .on_conflict_do_nothing()
            )

    async def remove(self, blocker_id: str, user_id: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                delete(UserBlockRow).where(
                    UserBlockRow.blocker_id == blocker_id, UserBlockRow.blocked_id == user_id
                )
            )
