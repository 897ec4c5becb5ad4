"""The block service with an in-memory store, a fake clock and a recording emitter: limits,
errors, idempotence, lists held only for connected blockers, and changes told at most twice a
second."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from liveroom.auth import Identity
from liveroom.blocks.model import BlockedUser
from liveroom.blocks.service import REFRESH_GAP_S, BlockService
from liveroom.blocks.store import MemoryBlockStore
from liveroom.errors import Full, Invalid, NotFound
from liveroom.users.store import UserRecord
from tests.fakes import FakeClock, eventually

ANA = Identity("ana", "Ana")


class Directory:
    """Users the server has seen."""

    def __init__(self, *ids: str) -> None:
        self.users = {i: UserRecord(i, i.title(), False, False, None, 0, 0) for i in ids}

    async def find(self, user_id: str) -> UserRecord | None:
        return self.users.get(user_id)


@dataclass
class Recorder:
    sent: list[tuple[str, Any, str | None]] = field(default_factory=list)

    async def emit(
        self,
        event: str,
        data: Any = None,
        to: str | None = None,
        room: str | None = None,
        skip_sid: list[str] | str | None = None,
    ) -> None:
        self.sent.append((event, data, to or room))

    async def enter_room(self, sid: str, room: str) -> None: ...

    async def leave_room(self, sid: str, room: str) -> None: ...

    async def disconnect(self, sid: str) -> None: ...


@dataclass
class World:
    service: BlockService
    store: MemoryBlockStore
    emitter: Recorder
    clock: FakeClock
    sockets: dict[str, set[str]]
    refreshed: list[str]


@pytest.fixture
async def world(fake_clock: FakeClock) -> AsyncIterator[World]:
    store, emitter = MemoryBlockStore(), Recorder()
    sockets: dict[str, set[str]] = {"ana": {"s1", "s2"}}
    users = Directory("ana", "troll", "spam", "bot1", "bot2", "bot3")
    service = BlockService(
        store, users, emitter, lambda u: set(sockets.get(u, ())), fake_clock, limit=3
    )
    refreshed: list[str] = []

    async def on_change(identity: Identity, sids: set[str]) -> None:
        refreshed.append(identity.user_id)

    service.view_changed.append(on_change)
    yield World(service, store, emitter, fake_clock, sockets, refreshed)
    await service.stop()


class SlowRemove(MemoryBlockStore):
    """``remove`` waits until the test lets it finish."""

    def __init__(self) -> None:
        super().__init__()
        self.removing, self.release = asyncio.Event(), asyncio.Event()

    async def remove(self, blocker_id: str, user_id: str) -> None:
        self.removing.set()
        await self.release.wait()
        await super().remove(blocker_id, user_id)


async def test_a_list_let_go_while_a_change_is_written_comes_back_whole(
    fake_clock: FakeClock,
) -> None:
    """Unblock one user and close the tab: the last socket's close waits for the write, and a
    reconnect holds the whole remaining list, not the one change."""
    store = SlowRemove()
    sockets: dict[str, set[str]] = {"ana": {"s1"}}
    users = Directory("ana", "troll", "bot")
    service = BlockService(store, users, Recorder(), lambda u: set(sockets.get(u, ())), fake_clock)
    try:
        await service.block(ANA, "troll", True)
        await service.block(ANA, "bot", True)
        unblocking = asyncio.create_task(service.block(ANA, "bot", False))
        await store.removing.wait()
        sockets["ana"] = set()
        closing = asyncio.create_task(service.socket_closed("ana"))
        await asyncio.sleep(0)
        store.release.set()
        await unblocking
        await closing
        assert not service.index.holds("ana")
        sockets["ana"] = {"s2"}
        await service.admit(ANA)  # she comes back: her list is loaded, not forgotten
        assert service.index.blocked_by("ana").keys() == {"troll"}
        assert (await service.blocks_for("ana")).keys() == {"troll"}
    finally:
        await service.stop()


async def test_blocking_is_written_held_and_listed(world: World) -> None:
    blocked = await world.service.block(ANA, "troll", True)
    assert blocked == [
        {"id": "troll", "name": "Troll", "verified": False, "at": world.clock.now_ms()}
    ]
    assert await world.store.blocks_of("ana") == {"troll": world.clock.now_ms()}
    assert world.service.index.blockers_of("troll") == {"ana"}
    assert await world.service.listing("ana") == blocked
    # Her sockets are told, wherever they are connected, and what Ana sees is sent again.
    await eventually(lambda: len(world.emitter.sent) == 1 and world.refreshed == ["ana"])
    assert world.emitter.sent == [("user:blocks", {"blocked": blocked}, "user:ana")]


async def test_repeating_a_change_is_accepted_and_tells_nobody(world: World) -> None:
    await world.service.block(ANA, "troll", True)
    await eventually(lambda: world.refreshed == ["ana"])
    await world.clock.advance(REFRESH_GAP_S)
    first_at = (await world.store.blocks_of("ana"))["troll"]
    await world.clock.advance(60)
    again = await world.service.block(ANA, "troll", True)
    assert again[0]["at"] == first_at  # the first block stands
    assert await world.service.block(ANA, "spam", False) == again  # never blocked: fine
    await world.clock.advance(REFRESH_GAP_S)
    assert world.refreshed == ["ana"]


async def test_refusals_change_nothing(world: World) -> None:
    with pytest.raises(Invalid):
        await world.service.block(ANA, "ana", True)
    with pytest.raises(NotFound):
        await world.service.block(ANA, "never-seen", True)
    for user in ("bot1", "bot2", "bot3"):
        await world.service.block(ANA, user, True)
    with pytest.raises(Full):
        await world.service.block(ANA, "troll", True)
    assert set(await world.store.blocks_of("ana")) == {"bot1", "bot2", "bot3"}
    await world.service.block(ANA, "bot1", False)  # unblocking makes room
    await world.service.block(ANA, "troll", True)
    assert set(world.service.index.blocked_by("ana")) == {"bot2", "bot3", "troll"}


async def test_fast_clicks_are_told_at_most_once_per_gap(world: World) -> None:
    await world.service.block(ANA, "troll", True)
    await eventually(lambda: world.refreshed == ["ana"])  # the first at once
    for on in (False, True, False, True):
        await world.service.block(ANA, "troll", on)
    await world.clock.advance(REFRESH_GAP_S / 2)
    assert world.refreshed == ["ana"]
    await world.clock.advance(REFRESH_GAP_S / 2)
    await eventually(lambda: world.refreshed == ["ana", "ana"])  # the rest together
    await world.clock.advance(REFRESH_GAP_S * 4)
    assert world.refreshed == ["ana", "ana"]
    last = world.emitter.sent[-1][1]["blocked"]
    assert [u["id"] for u in last] == ["troll"]  # told the list as it ended up
    await world.service.stop()


async def test_a_list_is_held_while_its_blocker_is_connected(world: World) -> None:
    await world.store.add("bo", BlockedUser("troll", "Troll", False, 1))
    bo = Identity("bo", "Bo")
    await world.service.admit(ANA)  # blocks nobody: nothing loaded
    assert len(world.service.index) == 0
    world.sockets["bo"] = {"s3"}
    await world.service.admit(bo)
    assert world.service.index.blockers_of("troll") == {"bo"}
    await world.service.socket_closed("bo")  # still has a socket: kept
    assert world.service.index.holds("bo")
    world.sockets.pop("bo")
    await world.service.socket_closed("bo")
    assert not world.service.index.watched("troll")
    assert await world.service.blocks_for("bo") == {"troll": 1}  # SQL still knows (exports)
    assert await world.service.blocks_for("ana") == {}


async def test_unblocking_everyone_stops_holding_the_list(world: World) -> None:
    await world.service.block(ANA, "troll", True)
    await world.service.block(ANA, "troll", False)
    assert not world.service.index.holds("ana")
    assert await world.service.listing("ana") == []
    await world.service.stop()


async def test_a_change_made_on_another_node_is_read_again_here(world: World) -> None:
    """Several nodes: a change made here is told to the others; one made on another node (in
    the shared database) is read again here, and what the user sees here is sent again. A user
    who is not here is not held, but is known to block someone when they come."""
    told: list[str] = []

    async def tell(identity: Identity) -> None:
        told.append(identity.user_id)

    world.service.changed.append(tell)
    await world.service.block(ANA, "troll", True)
    await eventually(lambda: told == ["ana"] and world.refreshed == ["ana"])

    await world.store.add("ana", BlockedUser("spam", "Spam", False, 5))  # on another node
    await world.service.reload(ANA)
    assert set(world.service.index.blocked_by("ana")) == {"troll", "spam"}
    assert world.refreshed == ["ana", "ana"]

    bo = Identity("bo", "Bo")
    await world.store.add("bo", BlockedUser("troll", "Troll", False, 1))  # on another node
    await world.service.reload(bo)
    assert not world.service.index.holds("bo")
    world.sockets["bo"] = {"s3"}  # Bo comes here: the list he has now is held
    await world.service.admit(bo)
    assert world.service.index.blockers_of("troll") == {"ana", "bo"}
