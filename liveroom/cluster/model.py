"""Several nodes on one Redis, the pure part: where things live in Redis, what a node reports of
itself, where a new room goes, and when a lease may still be trusted.

A room is run by one node, its owner, which holds the room's lease: a Redis key naming the node
and a *token*, a number that grows with every new lease of that room. The token fences a node
that lost its lease without knowing it (a long pause): its writes carry its token and Redis
refuses them. A node also stops trusting its own lease ``margin`` seconds before it could have
lapsed, so it stops acting before another node may start.

A node that takes a room over numbers its HLS segments from a floor that grows with the lease's
token (:func:`first_media_sequence`): with media dirs of their own, no player ever sees a room's
media sequence numbers go backwards when it moves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

LEASE_TTL_S = 5.0
"""How long a lease lives unless renewed; a dead owner's rooms move after at most this long."""
RENEW_EVERY_S = 1.0
HEARTBEAT_TTL_S = 5.0
"""A node not heard from for this long is dead: its members drop out of the counts."""
TRUST_MARGIN_S = 1.5
"""An owner stops trusting its lease this long before it could have lapsed (with the default
TTL; a shorter lease is trusted for the same share of its life, :func:`trust_margin_s`)."""
SEQUENCES_PER_LEASE = 1_000_000_000
"""HLS segments one owner of a room may write before the next owner's floor (31 years of
1-second segments); a JavaScript player still counts them exactly after 9 million owners."""


@dataclass(frozen=True, slots=True)
class Keys:
    """The Redis keys of one cluster (``namespace``: ``--cluster-name``; tests use their own)."""

    namespace: str

    def node(self, node_id: str) -> str:
        return f"{self.namespace}:node:{node_id}"

    @property
    def nodes(self) -> str:
        return f"{self.namespace}:nodes"

    @property
    def rooms(self) -> str:
        return f"{self.namespace}:rooms"

    def lease(self, room_id: str) -> str:
        return f"{self.namespace}:room:{room_id}:lease"

    def epoch(self, room_id: str) -> str:
        return f"{self.namespace}:room:{room_id}:epoch"

    def stage(self, room_id: str) -> str:
        return f"{self.namespace}:room:{room_id}:stage"

    def listeners(self, room_id: str) -> str:
        """Every user ever counted in the room: unique listeners, across nodes."""
        return f"{self.namespace}:room:{room_id}:listeners"

    @property
    def sio_channel(self) -> str:
        return f"{self.namespace}:sio"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a node says of itself in each heartbeat."""

    id: str
    url: str
    rooms: int = 0
    sockets: int = 0
    peers: int = 0
    cpu: float = 0.0
    """Share of one core used since the last heartbeat, 0–1 (more with several threads)."""
    draining: bool = False
    beat_ms: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> NodeInfo:
        data = json.loads(text)
        return cls(
            id=str(data["id"]),
            url=str(data["url"]),
            rooms=int(data.get("rooms", 0)),
            sockets=int(data.get("sockets", 0)),
            peers=int(data.get("peers", 0)),
            cpu=float(data.get("cpu", 0.0)),
            draining=bool(data.get("draining", False)),
            beat_ms=int(data.get("beat_ms", 0)),
        )

    @property
    def load(self) -> float:
        """One number to compare nodes by: a core's worth of CPU, or of the work that costs it
        (≈ 250 WebRTC listeners, ≈ 5,000 idle sockets or 50 rooms per core, measured here)."""
        return self.cpu + self.peers / 250 + self.sockets / 5000 + self.rooms / 50


PLACEMENT_SLACK = 0.1
"""A node this much (relative) less loaded than the local one is not worth a hop."""


def least_loaded(nodes: Iterable[NodeInfo], local_id: str) -> str:
    """Where a new room goes: the least loaded node that is not draining. Nodes within
    :data:`PLACEMENT_SLACK` of the local node's load count as equal, and the local node wins a
    tie (no hop, and placement in tests is deterministic). The local node when nothing else is
    eligible."""
    candidates = [n for n in nodes if not n.draining]
    local = next((n for n in candidates if n.id == local_id), None)
    best = min(candidates, key=lambda n: (n.load, n.id), default=None)
    if best is None:
        return local_id
    if local is not None and local.load <= best.load * (1 + PLACEMENT_SLACK) + 0.01:
        return local_id
    return best.id


def claim_delay_s(nodes: Iterable[NodeInfo], me: str, step_s: float = 0.2) -> float:
    """How long a node waits before claiming an ownerless room: the least loaded node claims
    first, the others only if it did not (the claim itself is atomic; this only spreads rooms)."""
    ranked = sorted((n for n in nodes if not n.draining), key=lambda n: (n.load, n.id))
    for rank, node in enumerate(ranked):
        if node.id == me:
            return rank * step_s
    return len(ranked) * step_s


def lease_trusted(renewed_at_s: float, now_s: float, ttl_s: float, margin_s: float) -> bool:
    """May the owner still act on a lease whose last renewal was *sent* at ``renewed_at_s``?
    Only until ``margin_s`` before it could have lapsed in Redis."""
    return now_s < renewed_at_s + ttl_s - margin_s


def trust_margin_s(ttl_s: float) -> float:
    """How long before its lease could lapse an owner stops acting on it: the same share of
    the lease's life as :data:`TRUST_MARGIN_S` is of :data:`LEASE_TTL_S`."""
    return ttl_s * TRUST_MARGIN_S / LEASE_TTL_S


def renew_every_s(ttl_s: float) -> float:
    """How often leases are renewed and the heartbeat written: every second, and at least three
    times per lease's life (a short lease in tests)."""
    return min(RENEW_EVERY_S, ttl_s / 3)


def first_media_sequence(token: int) -> int:
    """The least HLS media sequence number of a room's owner holding the lease's ``token``th
    lease: 0 for the room's first, then a floor no earlier owner could have reached."""
    return max(0, token - 1) * SEQUENCES_PER_LEASE


def holder(node_id: str, token: int) -> str:
    """A lease's value: which node holds it, with which token."""
    return f"{node_id}:{token}"


def parse_holder(value: str | bytes | None) -> tuple[str, int] | None:
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    node_id, sep, token = text.rpartition(":")
    if not sep or not token.isdigit():
        return None
    return node_id, int(token)
