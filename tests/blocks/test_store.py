"""Block lists in memory and in SQL (SQLite and PostgreSQL): the same answers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from liveroom.blocks.model import BlockedUser
from liveroom.blocks.store import BlockStore, MemoryBlockStore, SqlBlockStore
from liveroom.db.migrate import upgrade
from liveroom.db.session import create_engine, session_factory
from liveroom.users.store import SqlUserStore, UserRecord
from tests.conftest import database_url


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlockStore]:
    if request.param == "memory":
        yield MemoryBlockStore()
        return
    async with contextlib.AsyncExitStack() as stack:
        engine = create_engine(await database_url(request.param, tmp_path, stack))
        stack.push_async_callback(engine.dispose)
        await upgrade(engine)
        yield SqlBlockStore(session_factory(engine))


async def test_a_list_is_written_read_and_emptied(store: BlockStore) -> None:
    assert await store.blockers() == set()
    await store.add("ana", BlockedUser("troll", "Troll", False, 100))
    await store.add("ana", BlockedUser("spam", "Spam", True, 200))
    await store.add("bo", BlockedUser("troll", "Troll", False, 300))
    await store.add("ana", BlockedUser("troll", "Renamed", False, 999))  # kept as it was

    assert await store.blockers() == {"ana", "bo"}
    assert await store.blocks_of("ana") == {"troll": 100, "spam": 200}
    assert await store.listing("ana") == [
        BlockedUser("spam", "Spam", True, 200),
        BlockedUser("troll", "Troll", False, 100),
    ]
    assert await store.listing("nobody") == []

    await store.remove("ana", "troll")
    await store.remove("ana", "never")
    assert await store.blocks_of("ana") == {"spam": 200}
    await store.remove("ana", "spam")
    assert await store.blockers() == {"bo"}


async def test_the_sql_list_names_people_as_the_server_knows_them_now(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    store = SqlBlockStore(sessions)
    await store.add("ana", BlockedUser("troll", "Old name", False, 100))
    await store.add("ana", BlockedUser("ghost", "Never written", False, 50))
    await SqlUserStore(sessions).upsert([UserRecord("troll", "New name", True, False, None, 1, 2)])
    assert await store.listing("ana") == [
        BlockedUser("troll", "New name", True, 100),
        BlockedUser("ghost", "Never written", False, 50),  # no user row: the name kept
    ]
