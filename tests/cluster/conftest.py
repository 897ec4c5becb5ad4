"""Two nodes in one process on one database and one real Redis (a private ``redis-server``),
each on a clock a test can hold as in a long pause of its process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from liveroom.app import CLUSTER, RunningServer, start_server
from liveroom.client import LiveroomClient
from liveroom.cluster.model import Keys
from liveroom.cluster.setup import Cluster
from liveroom.cluster.store import ClusterStore
from liveroom.config import Config
from liveroom.db.migrate import upgrade
from liveroom.db.session import create_engine
from tests.conftest import make_token
from tests.fakes import StallableClock, eventually

LEASE_TTL_S = 1.5
"""Short leases: renewed every half second, trusted for a second after each renewal."""


@dataclass
class Node:
    server: RunningServer
    clock: StallableClock

    @property
    def id(self) -> str:
        return self.cluster.node.node_id

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def cluster(self) -> Cluster:
        return self.server.app[CLUSTER]


@dataclass
class TwoNodes:
    a: Node
    b: Node
    redis: Redis
    keys: Keys
    clients: list[LiveroomClient] = field(default_factory=list)

    async def client(self, node: Node, user_id: str, **claims: Any) -> LiveroomClient:
        client = await LiveroomClient.connect(node.url, make_token(user_id, **claims))
        self.clients.append(client)
        return client

    async def room(self) -> tuple[str, LiveroomClient, Node, Node]:
        """A live room with its host joined (through node a): the room, the host, the node
        running it, the other."""
        host = await self.client(self.a, "artist", host=True)
        room_id = str((await host.request("room:create", {"title": "Moving"}))["room"]["id"])
        await host.request("room:join", {"room_id": room_id})
        running, other = self.running(room_id)
        return room_id, host, running, other

    @staticmethod
    def takes_over_only_when_told(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
        """The node claims no ownerless room by itself (as if draining): a test that takes a
        room over there does not race its own orphan search."""
        monkeypatch.setattr(node.cluster.node, "draining", True)

    def running(self, room_id: str) -> tuple[Node, Node]:
        """The node that runs the room, and the other one."""
        if room_id in self.a.cluster.node.leases:
            return self.a, self.b
        assert room_id in self.b.cluster.node.leases, f"no node runs room {room_id}"
        return self.b, self.a


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[ClusterStore]:
    """The cluster's Redis part alone, on keys of its own (never flushes anything)."""
    redis = Redis.from_url(redis_url)
    yield ClusterStore(redis, Keys(f"t-{uuid.uuid4().hex[:8]}"))
    await redis.aclose()


@pytest.fixture
async def two_nodes(config: Config, redis_url: str, tmp_path: Path) -> AsyncIterator[TwoNodes]:
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    engine = create_engine(database)
    await upgrade(engine)  # before either node starts: they would race to migrate
    await engine.dispose()
    keys = Keys(f"t-{uuid.uuid4().hex[:8]}")
    shared = replace(
        config,
        database_url=database,
        redis_url=redis_url,
        cluster_name=keys.namespace,
        lease_ttl_s=LEASE_TTL_S,
    )
    nodes = []
    for node_id in ("a", "b"):
        clock = StallableClock()
        server = await start_server(
            replace(shared, node_id=node_id, data_dir=tmp_path / node_id), clock=clock
        )
        nodes.append(Node(server, clock))
    a, b = nodes
    await eventually(lambda: "b" in a.cluster.node.alive_nodes, timeout=5)
    await eventually(lambda: "a" in b.cluster.node.alive_nodes, timeout=5)
    redis = Redis.from_url(redis_url)
    both = TwoNodes(a, b, redis, keys)
    yield both
    for node in (a, b):
        node.clock.resume()
    await asyncio.gather(*(c.close() for c in both.clients))
    await b.server.stop()
    await a.server.stop()
    await redis.aclose()
