"""Two nodes in one process on one database and one real Redis: a room runs on the node that
created it, and a fan whose socket is on the other node joins, asks, raises a hand and is heard
of there, with the room's events reaching them and the count exact."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from liveroom.app import CLUSTER, ROOMS, RunningServer, start_server
from liveroom.client import LiveroomClient
from liveroom.config import Config
from liveroom.db.migrate import upgrade
from liveroom.db.session import create_engine
from liveroom.errors import NotFound
from tests.conftest import make_token
from tests.fakes import eventually


@pytest.fixture
async def two_nodes(
    config: Config, redis_url: str, tmp_path: Path
) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    engine = create_engine(database)
    await upgrade(engine)  # before either node starts: they would race to migrate
    await engine.dispose()
    shared = replace(
        config,
        database_url=database,
        redis_url=redis_url,
        cluster_name=f"t-{uuid.uuid4().hex[:8]}",
    )
    a = await start_server(replace(shared, node_id="a", data_dir=tmp_path / "a"))
    b = await start_server(replace(shared, node_id="b", data_dir=tmp_path / "b"))
    await eventually(lambda: "b" in a.app[CLUSTER].node.alive_nodes, timeout=5)
    await eventually(lambda: "a" in b.app[CLUSTER].node.alive_nodes, timeout=5)
    yield a, b
    await b.stop()
    await a.stop()


async def test_a_fan_on_another_node_takes_part_in_the_room(
    two_nodes: tuple[RunningServer, RunningServer],
) -> None:
    a, b = two_nodes
    host = await LiveroomClient.connect(a.url, make_token("artist", "Artist", host=True))
    fan: LiveroomClient | None = None
    try:
        created = await host.request("room:create", {"title": "Across nodes"})
        room_id = created["room"]["id"]
        await host.request("room:join", {"room_id": room_id})
        # The room went to the least loaded node; the fan connects to the other one.
        if room_id not in a.app[CLUSTER].node.leases:
            a, b = b, a
        assert room_id in a.app[CLUSTER].node.leases
        fan = await LiveroomClient.connect(b.url, make_token("fan", "Fan"))

        joined = await fan.request("room:join", {"room_id": room_id})
        assert joined["room"]["title"] == "Across nodes"
        with pytest.raises(NotFound):  # B only carries the fan's events
            b.app[ROOMS].state(room_id)
        await host.next_event("room:count", lambda e: e["listeners"] == 2)
        assert a.app[ROOMS].presence.count(room_id) == 2
        await fan.next_event("qa:update", lambda e: "full" in e)  # after the join's ack

        asked = await fan.request("qa:ask", {"room_id": room_id, "text": "Hello from B"})
        question_id = asked["question"]["id"]
        await host.next_event(
            "qa:update", lambda e: any(q["id"] == question_id for q in e.get("changes", ()))
        )
        await host.request("qa:approve", {"question_id": question_id})
        await fan.next_event(
            "qa:update",
            lambda e: any(
                q["id"] == question_id and q["status"] == "approved" for q in e.get("changes", ())
            ),
        )

        await fan.request("stage:request", {"room_id": room_id})
        await host.next_event("room:state", lambda s: [u["id"] for u in s["requests"]] == ["fan"])
        await host.request("stage:approve", {"room_id": room_id, "user_id": "fan"})
        state = await fan.next_event("room:state", lambda s: s["you"]["role"] == "speaker")
        assert [p["id"] for p in state["speakers"]] == ["fan"]

        await fan.close()  # its node tells the room's node
        await host.next_event("room:count", lambda e: e["listeners"] == 1, timeout=10)
    finally:
        await asyncio.gather(host.close(), *([fan.close()] if fan else []))
