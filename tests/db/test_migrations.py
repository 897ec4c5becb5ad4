"""The same migrations and store code on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from liveroom.app import StartupError, prepare_database
from liveroom.db import models  # noqa: F401  (the tables)
from liveroom.db.base import Base
from liveroom.db.migrate import current_revision, head_revision, upgrade
from liveroom.db.session import create_engine, session_factory
from liveroom.users.store import SqlUserStore, UserRecord
from tests.conftest import database_url


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with contextlib.AsyncExitStack() as stack:
        engine = create_engine(await database_url(request.param, tmp_path, stack))
        yield engine
        await engine.dispose()


async def test_upgrade_reaches_head_and_is_idempotent(engine: AsyncEngine) -> None:
    assert await current_revision(engine) is None
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()


async def test_user_round_trip(engine: AsyncEngine) -> None:
    await upgrade(engine)
    store = SqlUserStore(session_factory(engine))
    ana = UserRecord("u1", "Ana", False, False, "KR", created_at=1000, last_seen_at=1000)
    await store.upsert([ana, UserRecord("g_2", "Guest", False, True, None, 1500, 1500)])
    assert await store.get("u1") == ana
    renamed = UserRecord("u1", "Ana ✓", True, False, "JP", created_at=9000, last_seen_at=9000)
    await store.upsert([renamed])
    assert await store.get("u1") == UserRecord("u1", "Ana ✓", True, False, "JP", 1000, 9000)
    guest = await store.get("g_2")
    assert guest is not None and guest.guest
    assert await store.get("nobody") is None


async def test_server_upgrades_sqlite_itself_but_not_postgresql(engine: AsyncEngine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "sqlite":
        await prepare_database(engine, url)
        assert await current_revision(engine) == head_revision()
    else:
        with pytest.raises(StartupError, match="liveroom db upgrade"):
            await prepare_database(engine, url)
        await upgrade(engine)
        await prepare_database(engine, url)


async def test_large_batches_fit_the_drivers_parameter_limits(engine: AsyncEngine) -> None:
    await upgrade(engine)
    store = SqlUserStore(session_factory(engine))
    await store.upsert(UserRecord(f"fan-{i}", "Fan", False, False, None, i, i) for i in range(6000))
    last = await store.get("fan-5999")
    assert last is not None and last.created_at == 5999


async def test_migrations_match_the_models(engine: AsyncEngine) -> None:
    """A model changed without a migration (or the reverse) shows up here, on both databases."""
    await upgrade(engine)

    def diff(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []
