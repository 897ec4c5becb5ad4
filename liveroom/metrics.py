"""Prometheus metrics at ``GET /metrics``: what this node is doing, read when it is scraped.

- Gauges (rooms, sockets, peer connections, listeners) are read from the live objects by one
  collector at scrape time: nothing is updated on every join or leave.
- Counters on hot paths (Socket.IO events, HLS requests, mixer ticks, RTP packets) are plain
  integers the parts keep — an event costs a dict increment — turned into Prometheus counters
  only when scraped. The parts import no metrics library.
- Histograms are observed where the time is measured: SQL transactions through an engine event
  hook (:func:`time_transactions`), Redis round trips through :meth:`ServerMetrics.redis_timer`;
  mixer ticks are kept in fixed buckets by the media engine itself.

Every app has its own :class:`CollectorRegistry`, so several servers in one process (the tests)
never share a series. Label values are bounded: event names by the registry (any other is
``other``), error codes by the error kinds, rooms by :data:`TOP_ROOMS`.

Who may scrape: see :class:`MetricsApi`.
"""

from __future__ import annotations

import contextlib
import heapq
import hmac
import ipaddress
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from liveroom.errors import Forbidden, Unauthorized
from liveroom.media.counters import TICK_BUCKETS_S, RtpCounts
from liveroom.media.engine import MediaEngine
from liveroom.media.hls_api import HlsApi
from liveroom.rooms.service import RoomService
from liveroom.signaling.dispatch import Signaling
from liveroom.signaling.transport import LiveroomSocketServer

TOP_ROOMS = 20
"""Rooms whose listeners get a series of their own (``room_id`` label): the most listened."""

DB_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REDIS_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
"""A request carrying one came through a proxy: its true source is not the peer address."""

_TX_STARTED = "liveroom_tx_started"


@dataclass(frozen=True, slots=True)
class Sources:
    """The live parts the collector reads."""

    rooms: RoomService
    signaling: Signaling
    sio: LiveroomSocketServer
    media: MediaEngine
    hls: HlsApi


@dataclass
class ServerMetrics:
    """One app's metrics: its registry, the histograms observed as things happen, and the
    collector that reads everything else when scraped."""

    sources: Sources
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    top_rooms: int = TOP_ROOMS
    rtp: RtpCounts = field(default_factory=RtpCounts)
    """RTP counts as of the last :meth:`refresh` (they are read with an await, the collector
    cannot wait)."""

    def __post_init__(self) -> None:
        self.db_seconds = Histogram(
            "liveroom_db_transaction_seconds",
            "SQL transactions, from BEGIN to COMMIT or ROLLBACK",
            ["outcome"],
            buckets=DB_BUCKETS_S,
            registry=self.registry,
        )
        self.redis_seconds = Histogram(
            "liveroom_redis_command_seconds",
            "Redis round trips (only with --redis-url)",
            buckets=REDIS_BUCKETS_S,
            registry=self.registry,
        )
        self.registry.register(LiveCollector(self))

    @contextlib.contextmanager
    def redis_timer(self) -> Iterator[None]:
        """Around one Redis command or pipeline: ``with metrics.redis_timer(): await ...``.
        The hook for whatever talks to Redis (readiness pings it today)."""
        began = time.perf_counter()
        try:
            yield
        finally:
            self.redis_seconds.observe(time.perf_counter() - began)

    async def refresh(self) -> None:
        """Read what needs an await, just before a scrape."""
        self.rtp = await self.sources.media.rtp_totals()

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The registry in the format ``accept`` asks for (Prometheus text by default, or
        OpenMetrics), and its content type."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


def time_transactions(engine: AsyncEngine, seconds: Histogram) -> None:
    """Observe every transaction of ``engine`` into ``seconds`` (labelled by ``outcome``),
    through SQLAlchemy's connection events: one place, whatever the store."""
    committed, rolled_back = seconds.labels("commit"), seconds.labels("rollback")

    def began(conn: Connection) -> None:
        conn.info[_TX_STARTED] = time.perf_counter()

    def commit(conn: Connection) -> None:
        started = conn.info.pop(_TX_STARTED, None)
        if started is not None:
            committed.observe(time.perf_counter() - started)

    def rollback(conn: Connection) -> None:
        started = conn.info.pop(_TX_STARTED, None)
        if started is not None:
            rolled_back.observe(time.perf_counter() - started)

    event.listen(engine.sync_engine, "begin", began)
    event.listen(engine.sync_engine, "commit", commit)
    event.listen(engine.sync_engine, "rollback", rollback)


class LiveCollector(Collector):
    """Reads the live objects at scrape time."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return ()  # nothing to check against other collectors: the registry is the app's own

    def collect(self) -> Iterable[Metric]:
        src = self._metrics.sources
        yield from _rooms(src.rooms.live_listeners(), self._metrics.top_rooms)
        yield _gauge(
            "liveroom_socketio_connections",
            "Socket.IO connections (authenticated sockets)",
            len(src.signaling.connections),
        )
        yield _gauge(
            "liveroom_webrtc_peer_connections",
            "WebRTC peer connections of the media engine",
            src.media.peer_connections,
        )
        yield _gauge("liveroom_media_rooms", "rooms with a running mixer", src.media.open_rooms)
        yield _by_label(
            "liveroom_socketio_events_received",
            "Socket.IO events received, by event (unknown names: other)",
            "event",
            src.signaling.events_in.counts,
        )
        yield _by_label(
            "liveroom_socketio_event_errors",
            "Socket.IO events answered with an error, by error code",
            "code",
            src.signaling.refusals.counts,
        )
        yield _by_label(
            "liveroom_socketio_events_sent",
            "Socket.IO events emitted, by event (a room broadcast counts once)",
            "event",
            src.sio.events_out.counts,
        )
        engine = src.sio.engine
        yield _counter(
            "liveroom_socketio_packets_sent",
            "packets queued to sockets (a broadcast counts once per recipient)",
            engine.packets_sent,
        )
        yield _counter(
            "liveroom_socketio_slow_clients_dropped",
            "sockets dropped for not reading their queue (--socket-queue-limit)",
            engine.dropped_slow,
        )
        yield from _mixer(src.media)
        yield from _rtp(self._metrics.rtp)
        hls = CounterMetricFamily(
            "liveroom_hls_requests",
            "HLS requests answered here (not by a cache in front), by kind and outcome",
            labels=["kind", "outcome"],
        )
        for (kind, outcome), value in sorted(src.hls.requests.items()):
            hls.add_metric([kind, outcome], value)
        yield hls


def _rooms(listeners: Mapping[str, int], top_rooms: int) -> Iterator[Metric]:
    yield _gauge("liveroom_rooms_live", "live rooms on this node", len(listeners))
    yield _gauge(
        "liveroom_listeners", "members present in live rooms, all rooms", sum(listeners.values())
    )
    top = GaugeMetricFamily(
        "liveroom_room_listeners",
        "members present in each of the most listened live rooms (the top 20 by default)",
        labels=["room_id"],
    )
    for room_id, count in heapq.nlargest(top_rooms, listeners.items(), key=lambda kv: kv[1]):
        top.add_metric([room_id], count)
    yield top


def _mixer(media: MediaEngine) -> Iterator[Metric]:
    stats = media.mixer_totals()
    times = stats.tick_times
    cumulative, buckets = 0, []
    for bound, count in zip((*TICK_BUCKETS_S, float("inf")), times.buckets, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
    yield HistogramMetricFamily(
        "liveroom_mixer_tick_seconds",
        "how long one mixer tick took (mix and encodes; the budget is 0.02 s)",
        buckets=buckets,
        sum_value=times.total_s,
    )
    yield _counter(
        "liveroom_mixer_late_ticks",
        "mixer ticks lost to a late event loop (skipped, heard as a gap)",
        stats.late_ticks,
    )
    yield _counter(
        "liveroom_mixer_encodes", "Opus encodes (program mix and mix-minus)", stats.encodes
    )
    yield _counter(
        "liveroom_listener_fanout_packets",
        "RTP packets sent to listeners by the per-room fan-out loop",
        stats.fanout_packets,
    )
    yield _counter(
        "liveroom_listener_fanout_seconds",
        "CPU time the per-room fan-out loop took (per packet: divide by the packets)",
        stats.fanout_s,
    )


def _rtp(rtp: RtpCounts) -> Iterator[Metric]:
    yield _counter("liveroom_rtp_packets_sent", "RTP packets sent to clients", rtp.sent)
    yield _counter(
        "liveroom_rtp_packets_received", "RTP packets received from speakers", rtp.received
    )
    lost = CounterMetricFamily(
        "liveroom_rtp_packets_lost",
        "RTP packets lost: outbound as clients report it (RTCP), inbound from speakers",
        labels=["direction"],
    )
    lost.add_metric(["outbound"], rtp.sent_lost)
    lost.add_metric(["inbound"], rtp.received_lost)
    yield lost


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _by_label(
    name: str, documentation: str, label: str, counts: Mapping[str, int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family


class MetricsApi:
    """``GET /metrics``, in Prometheus' text format.

    Who may scrape it (the default is safe on a public address and useful without setup):

    - ``--metrics-token`` set: whoever sends it as ``Authorization: Bearer``, from anywhere,
      and nobody else;
    - else: peers on loopback or private networks (a Prometheus beside the server, in the same
      Docker network or Kubernetes cluster) whose request came through no proxy — a request
      with ``X-Forwarded-For`` (or ``Forwarded``, ``X-Real-IP``) is from the world behind that
      proxy, even when the proxy itself is on loopback;
    - ``--no-metrics``: not served at all (404).
    """

    def __init__(self, metrics: ServerMetrics, token: str | None) -> None:
        self._metrics = metrics
        self._token = token.encode() if token else None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/metrics", self.scrape)

    async def scrape(self, request: web.Request) -> web.Response:
        self._check(request)
        await self._metrics.refresh()
        body, content_type = self._metrics.exposition(request.headers.get("Accept", ""))
        return web.Response(
            body=body, headers={"Content-Type": content_type, "Cache-Control": "no-store"}
        )

    def _check(self, request: web.Request) -> None:
        if self._token is not None:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), self._token
            ):
                raise Unauthorized("/metrics needs the metrics token as a Bearer token")
            return
        if any(h in request.headers for h in FORWARDING_HEADERS) or not _private_peer(request):
            raise Forbidden(
                "/metrics is served to private networks only, not through a proxy; "
                "set --metrics-token to scrape it from elsewhere"
            )


def _private_peer(request: web.Request) -> bool:
    """The TCP peer (not any rewritten address) is on loopback or a private network."""
    peer: Any = request.transport.get_extra_info("peername") if request.transport else None
    return bool(peer) and is_private_address(str(peer[0]))


def is_private_address(address: str) -> bool:
    """Loopback, RFC 1918, link-local or IPv6 unique-local (IPv4-mapped too); nothing else."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_private
