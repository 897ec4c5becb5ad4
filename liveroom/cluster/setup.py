"""A node's cluster parts, built together for ``create_app`` when ``--redis-url`` is given."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from liveroom.blocks.service import BlockService
from liveroom.clock import Clock
from liveroom.cluster.bus import Bus, ClusterManager
from liveroom.cluster.handover import Handover
from liveroom.cluster.model import Keys, first_media_sequence
from liveroom.cluster.node import ClusterNode
from liveroom.cluster.routing import ClusterRouter, RemoteSockets
from liveroom.cluster.store import ClusterStore, Lease
from liveroom.cluster.takeover import Takeover
from liveroom.cluster.users import UserNews
from liveroom.config import Config
from liveroom.media.hls import number_from
from liveroom.media.stage_audio import StageAudio
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
    takeover: Takeover
    handover: Handover

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


@dataclass(frozen=True, slots=True)
class Features:
    """The node's features the cluster works with: a room leaving the node stops in each, and
    what concerns a user (bans, block lists) is made on every node."""

    rooms: RoomService
    qa: QaService
    playlists: PlaylistService
    audio: StageAudio
    stats: StatsService
    blocks: BlockService


def join_cluster(
    config: Config,
    clock: Clock,
    manager: ClusterManager,
    signaling: Signaling,
    features: Features,
    remote: RemoteSockets,
    load: Any,
) -> Cluster:
    """Wire a node into the cluster: events routed to their room's node, rooms claimed."""
    assert config.redis_url is not None
    rooms, qa, playlists = features.rooms, features.qa, features.playlists
    # Short timeouts: a lease must be renewed every second or given up, not waited on for long.
    redis = Redis.from_url(config.redis_url, socket_timeout=2, socket_connect_timeout=2)
    store = ClusterStore(redis, manager.keys)
    url = config.node_url or f"http://{config.host}:{config.port}"
    node = ClusterNode(manager.node_id, url, store, clock, load, config.lease_ttl_s)

    async def room_of(scope: Scope, payload: Payload) -> str | None:
        match scope:
            case Scope.ROOM:
                return str(payload.room_id)  # type: ignore[attr-defined]
            case Scope.QUESTION:
                return await qa.room_of(payload.question_id)  # type: ignore[attr-defined]
            case Scope.PLAYLIST_ITEM:
                return await playlists.room_of(payload.item_id)  # type: ignore[attr-defined]
        return None

    hls_dir = config.effective_media_dir / "hls"

    async def number_hls(lease: Lease) -> None:
        """A room run here after another node: its HLS numbered past anything that node wrote."""
        if lease.token > 1:
            floor = first_media_sequence(lease.token)
            await asyncio.to_thread(_number_from, hls_dir / lease.room_id, floor)

    def members_here(channel: str) -> list[str]:
        """This node's sockets in a Socket.IO room."""
        return list(manager.rooms.get("/", {}).get(channel, {}))

    bus = Bus(manager, node.alive)
    router = ClusterRouter(node, bus, manager, signaling, rooms, features.blocks, room_of, remote)
    handover = Handover(
        node, router, rooms, features.audio, qa, playlists, features.stats, members_here
    )
    takeover = Takeover(
        node,
        store,
        bus,
        router,
        rooms,
        signaling,
        manager.server,
        members_here,
        features.stats,
        handover,
    )
    UserNews(node, bus, rooms, features.blocks)
    node.claimed.append(number_hls)
    rooms.first_joins.append(node.saw)
    signaling.router = router
    rooms.claim = node.claim
    rooms.release = node.let_go
    rooms.runs = node.trusted
    features.stats.runs = node.trusted
    rooms.observers.append(node)
    return Cluster(node, router, bus, manager, redis, takeover, handover)


def _number_from(directory: Path, sequence: int) -> None:
    # An unwritable media dir: the packager finds it so too, and says so.
    with contextlib.suppress(OSError):
        number_from(directory, sequence)
