"""A node's cluster parts, built together for ``create_app`` when ``--redis-url`` is given."""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from liveroom.clock import Clock
from liveroom.cluster.bus import Bus, ClusterManager
from liveroom.cluster.model import Keys
from liveroom.cluster.node import ClusterNode
from liveroom.cluster.routing import ClusterRouter, RemoteSockets
from liveroom.cluster.store import ClusterStore
from liveroom.cluster.takeover import Takeover
from liveroom.config import Config
from liveroom.permissions import Scope
from liveroom.playlist.service import PlaylistService
from liveroom.qa.service import QaService
from liveroom.rooms.service import RoomService
from liveroom.signaling.dispatch import Signaling
from liveroom.signaling.payloads import Payload
from liveroom.stats.service import StatsService


def node_id_of(config: Config) -> str:
    """The configured name, else one of this life: host, port and a random part."""
    return config.node_id or f"{socket.gethostname()}-{config.port}-{secrets.token_hex(3)}"


def manager_for(config: Config, node_id: str) -> ClusterManager:
    assert config.redis_url is not None
    return ClusterManager(config.redis_url, Keys(config.cluster_name), node_id)


@dataclass
class Cluster:
    """What a node runs to be one of several; started before the rooms, stopped after."""

    node: ClusterNode
    router: ClusterRouter
    bus: Bus
    manager: ClusterManager
    redis: Redis

    async def start(self) -> None:
        # The library starts its listener at the first connection; the bus needs it now.
        self.manager.server.manager_initialized = True
        self.manager.initialize()
        await self.node.start()

    async def stop(self) -> None:
        await self.router.stop()
        await self.bus.stop()
        await self.node.stop()
        thread = getattr(self.manager, "thread", None)
        if thread is not None:
            thread.cancel()
        await self.redis.aclose()


def join_cluster(
    config: Config,
    clock: Clock,
    manager: ClusterManager,
    signaling: Signaling,
    rooms: RoomService,
    qa: QaService,
    playlists: PlaylistService,
    remote: RemoteSockets,
    load: Any,
    stats: StatsService,
) -> Cluster:
    """Wire a node into the cluster: events routed to their room's node, rooms claimed."""
    assert config.redis_url is not None
    # Short timeouts: a lease must be renewed every second or given up, not waited on for long.
    redis = Redis.from_url(config.redis_url, socket_timeout=2, socket_connect_timeout=2)
    store = ClusterStore(redis, manager.keys)
    node_ref: list[ClusterNode] = []

    async def alive(node_id: str) -> bool:
        return await node_ref[0].alive(node_id)

    async def room_of(scope: Scope, payload: Payload) -> str | None:
        match scope:
            case Scope.ROOM:
                return str(payload.room_id)  # type: ignore[attr-defined]
            case Scope.QUESTION:
                return await qa.room_of(payload.question_id)  # type: ignore[attr-defined]
            case Scope.PLAYLIST_ITEM:
                return await playlists.room_of(payload.item_id)  # type: ignore[attr-defined]
        return None

    async def owner_of(room_id: str) -> str | None:
        return await node_ref[0].owner_of(room_id)

    async def place() -> str:
        return await node_ref[0].place()

    bus = Bus(manager, alive)
    router = ClusterRouter(
        manager.node_id,
        bus,
        manager,
        signaling,
        room_of,
        owner_of,
        place,
        rooms.socket_closed,
        remote,
    )
    url = config.node_url or f"http://{config.host}:{config.port}"
    node = ClusterNode(manager.node_id, url, store, router, clock, load, config.lease_ttl_s)
    node_ref.append(node)

    def members_here(channel: str) -> list[str]:
        """This node's sockets in a Socket.IO room."""
        return list(manager.rooms.get("/", {}).get(channel, {}))

    Takeover(node, store, bus, router, rooms, signaling, manager.server, members_here, stats)
    rooms.first_joins.append(node.saw)
    signaling.router = router
    rooms.claim = node.claim
    rooms.observers.append(node)
    return Cluster(node, router, bus, manager, redis)
