"""The composition root: :func:`create_app` builds every part of a server and wires them.

Parts live under typed :class:`web.AppKey`s; whatever holds a connection or runs a task is
started and stopped by ``cleanup_ctx``/``on_shutdown`` here, and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from liveroom import __version__
from liveroom.api import PlatformApi, cors, error_middleware, forwarded_for, security_headers
from liveroom.auth import Identity, TokenService
from liveroom.blocks.service import BlockService
from liveroom.blocks.store import SqlBlockStore
from liveroom.clock import Clock, SystemClock
from liveroom.cluster.routing import RemoteSockets
from liveroom.cluster.setup import Cluster, Features, join_cluster, manager_for, node_id_of
from liveroom.config import Config
from liveroom.db.migrate import current_revision, head_revision, upgrade
from liveroom.db.session import create_engine, is_sqlite, session_factory
from liveroom.errors import LiveroomError
from liveroom.media.engine import HlsSettings, MediaEngine
from liveroom.media.hls import LIVE_PLAYLIST
from liveroom.media.hls_api import HlsApi, ReplayRetention
from liveroom.media.hls_playlist import target_duration
from liveroom.media.ice import ice_servers_for
from liveroom.media.stage_audio import StageAudio
from liveroom.metrics import MetricsApi, ServerMetrics, Sources, time_transactions
from liveroom.permissions import STAGE
from liveroom.playlist.dj import DjBooth
from liveroom.playlist.media import MediaApi
from liveroom.playlist.model import PlaylistLimits
from liveroom.playlist.service import PlaylistService, RoundTrips
from liveroom.playlist.store import SqlPlaylistStore
from liveroom.qa.api import QaApi
from liveroom.qa.model import QaLimits
from liveroom.qa.service import QaService
from liveroom.qa.store import SqlQaStore
from liveroom.ratelimit import RateLimits
from liveroom.readiness import MediaDirProbe, Readiness, database_check, redis_check
from liveroom.rooms import model as stage_model
from liveroom.rooms.api import RoomsApi
from liveroom.rooms.fanout import Emitter, room_channel
from liveroom.rooms.participation import ParticipationLog
from liveroom.rooms.presence import Presence
from liveroom.rooms.service import RoomsConfig, RoomService
from liveroom.rooms.stage import StageLimits
from liveroom.rooms.store import MemoryStageStore, SqlRoomStore
from liveroom.signaling import clock_sync
from liveroom.signaling import playlist as playlist_events
from liveroom.signaling import qa as qa_events
from liveroom.signaling import rooms as room_events
from liveroom.signaling import users as user_events
from liveroom.signaling.dispatch import Signaling
from liveroom.signaling.registry import EventRegistry
from liveroom.signaling.rooms import MediaInfo
from liveroom.signaling.transport import LiveroomSocketServer
from liveroom.stats.api import RankingsApi
from liveroom.stats.listening import ListenerCounting
from liveroom.stats.model import RecordBroken
from liveroom.stats.rankings import SqlRankings
from liveroom.stats.service import StatsConfig, StatsService
from liveroom.stats.store import SqlStatsStore
from liveroom.users.service import UserDirectory
from liveroom.users.store import SqlUserStore
from liveroom.webhooks.model import MIN_SECRET_BYTES as MIN_WEBHOOK_SECRET_BYTES
from liveroom.webhooks.notifier import WebhookNotifier
from liveroom.webhooks.sender import WebhookSender

logger = logging.getLogger(__name__)

CONFIG = web.AppKey("config", Config)
CLOCK = web.AppKey("clock", Clock)
TOKENS = web.AppKey("tokens", TokenService)
LIMITS = web.AppKey("limits", RateLimits)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
USERS = web.AppKey("users", UserDirectory)
SIO = web.AppKey("sio", LiveroomSocketServer)
REGISTRY = web.AppKey("registry", EventRegistry)
SIGNALING = web.AppKey("signaling", Signaling)
ROOMS = web.AppKey("rooms", RoomService)
AUDIO = web.AppKey("audio", StageAudio)
STATS = web.AppKey("stats", StatsService)
RETENTION = web.AppKey("retention", ReplayRetention)
QA = web.AppKey("qa", QaService)
PLAYLISTS = web.AppKey("playlists", PlaylistService)
BLOCKS = web.AppKey("blocks", BlockService)
WEBHOOKS = web.AppKey("webhooks", WebhookSender)
CLUSTER = web.AppKey("cluster", Cluster)
HLS = web.AppKey("hls", HlsApi)
METRICS = web.AppKey("metrics", ServerMetrics)
"""Only with ``--redis-url``."""

SERVER_SHUTDOWN = "server:shutdown"
"""Sent to every socket just before the server closes it on its way down."""


class StartupError(LiveroomError):
    """The server cannot start as configured (the message says what to do)."""


def bundled_web_dir() -> Path | None:
    """The web client: ``web/`` of a source checkout, or of the current directory."""
    for candidate in (Path(__file__).resolve().parent.parent / "web", Path.cwd() / "web"):
        if (candidate / "index.html").is_file():
            return candidate
    return None


def create_app(config: Config, *, clock: Clock | None = None) -> web.Application:
    """A complete liveroom server for ``config`` (its secret resolved from the data dir)."""
    refuse_what_cannot_run(config)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    config = config.with_secret()
    assert config.secret is not None
    clock = clock or SystemClock()
    app = web.Application(
        middlewares=[
            forwarded_for(config.trusted_proxies),
            security_headers,
            cors(config.cors_origins),
            error_middleware,
        ],
        client_max_size=1024 * 1024,
    )

    tokens = TokenService(config.secret, clock, config.guest_token_ttl_s)
    limits = RateLimits(config.rate_limits, clock)
    engine = create_engine(config.effective_database_url)
    sessions = session_factory(engine)
    users = UserDirectory(SqlUserStore(sessions), clock)

    cluster_manager = manager_for(config, node_id_of(config)) if config.redis_url else None
    sio = LiveroomSocketServer(
        client_manager=cluster_manager,
        queue_limit=config.socket_queue_limit,
        async_mode="aiohttp",
        max_http_buffer_size=config.max_message_bytes,
        cors_allowed_origins=_socket_origins(config.cors_origins),
        logger=False,
        engineio_logger=False,
    )
    sio.attach(app, socketio_path="socket.io")
    registry = EventRegistry()
    signaling = Signaling(sio, registry, tokens, limits, users, config.socket_inflight_limit)
    round_trips = _round_trips(registry, signaling, clock)
    remote_sockets = RemoteSockets()  # several nodes: other nodes' sockets in rooms run here
    blocks = _block_lists(app, sessions, users, sio, signaling, clock, remote_sockets)

    rooms = RoomService(
        MemoryStageStore(),
        SqlRoomStore(sessions),
        Presence(),
        ParticipationLog(sessions, clock),
        sio,
        signaling.sids_of_user,
        lambda sid: sid in signaling.connections or sid in remote_sockets,
        clock,
        RoomsConfig(
            limits=StageLimits(
                speaker_grace_ms=round(config.speaker_grace_s * 1000),
                host_grace_ms=round(config.host_grace_s * 1000),
            ),
            reactions=config.reactions,
        ),
        blocks=blocks.index,
    )
    media = _media_engine(config, clock)
    audio = StageAudio(
        media,
        sio,
        rooms.presence.sids_of,
        rooms.presence.is_present,
        clock,
        config.webrtc_audience,
    )
    rooms.observers.append(audio)

    qa = _questions(config, sessions, rooms, sio, limits, clock, blocks)
    playlists, playlist_store = _playlists(config, sessions, rooms, sio, clock, round_trips, media)

    stats = _listener_stats(
        config, sessions, clock, sio, rooms, _webhooks(app, config, clock, rooms, qa)
    )

    on_join = (qa.joined, playlists.joined)
    media_info = _media_info(config, clock, rooms)
    room_events.register(registry, rooms, audio, media_info, qa, on_join)
    qa_events.register(registry, rooms, qa)
    playlist_events.register(registry, rooms, playlists)
    _members_follow_sockets(signaling, rooms, blocks)
    if cluster_manager is not None:  # several nodes
        app[CLUSTER] = join_cluster(
            config,
            clock,
            cluster_manager,
            signaling,
            Features(rooms, qa, playlists, audio, stats, blocks),
            remote_sockets,
            lambda: {"sockets": len(signaling.connections), "peers": media.peer_connections},
        )
    PlatformApi(tokens, limits, config.guests, media.hls_troubles).add_routes(app)
    _hls(app, config, clock, rooms, tokens, stats)
    RoomsApi(rooms, tokens).add_routes(app)
    RankingsApi(SqlRankings(sessions), clock).add_routes(app)
    QaApi(qa, rooms, tokens, blocks.blocks_for).add_routes(app)
    MediaApi(
        playlist_store,
        rooms,
        tokens,
        limits,
        clock,
        config.effective_media_dir,
        config.media_max_bytes,
        config.media_room_bytes,
        config.media_total_bytes,
    ).add_routes(app)
    _operations(app, config, engine, rooms, signaling, sio, media)
    _serve_web_client(app, config)  # last: its static route would shadow any added after it

    app[CONFIG], app[CLOCK], app[TOKENS], app[LIMITS] = config, clock, tokens, limits
    app[ENGINE], app[SESSIONS], app[USERS] = engine, sessions, users
    app[SIO], app[REGISTRY], app[SIGNALING], app[ROOMS] = sio, registry, signaling, rooms
    app[AUDIO], app[QA], app[PLAYLISTS], app[STATS] = audio, qa, playlists, stats
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_background)
    app.on_shutdown.append(_close_sockets)
    return app


MIN_METRICS_TOKEN_BYTES = 16


def _operations(
    app: web.Application,
    config: Config,
    engine: AsyncEngine,
    rooms: RoomService,
    signaling: Signaling,
    sio: LiveroomSocketServer,
    media: MediaEngine,
) -> None:
    """``/metrics`` (unless ``--no-metrics``) and ``/readyz``; docs/operations.md."""
    metrics = ServerMetrics(Sources(rooms, signaling, sio, media, app[HLS]))
    app[METRICS] = metrics
    if config.metrics:
        token = config.metrics_token
        if token is not None and len(token.encode()) < MIN_METRICS_TOKEN_BYTES:
            raise StartupError(f"--metrics-token must be at least {MIN_METRICS_TOKEN_BYTES} bytes")
        time_transactions(engine, metrics.db_seconds)
        MetricsApi(metrics, token).add_routes(app)
    checks = {
        "database": database_check(engine),
        "media_dir": MediaDirProbe(config.effective_media_dir).check,
    }
    cluster = app.get(CLUSTER)
    if cluster is not None:
        checks["redis"] = redis_check(cluster.redis, metrics.redis_timer)
    Readiness(checks).add_routes(app)


def _playlists(
    config: Config,
    sessions: async_sessionmaker[AsyncSession],
    rooms: RoomService,
    sio: LiveroomSocketServer,
    clock: Clock,
    round_trips: RoundTrips,
    media: MediaEngine,
) -> tuple[PlaylistService, SqlPlaylistStore]:
    """The rooms' playlists, following the stage (and its DJ deck playing into the room)."""
    store = SqlPlaylistStore(sessions)
    playlists = PlaylistService(
        store,
        rooms,
        sio,
        clock,
        PlaylistLimits(skip_share=config.skip_share),
        round_trips,
        ready_timeout_ms=round(config.playlist_ready_timeout_s * 1000),
        booth=DjBooth(media, config.effective_media_dir),
    )
    rooms.observers.append(playlists)
    return playlists, store


def _round_trips(registry: EventRegistry, signaling: Signaling, clock: Clock) -> RoundTrips:
    """Each socket's round trip, from its ``time:sync`` calls (the playlist waits for them)."""
    round_trips = RoundTrips()
    clock_sync.register(registry, clock, round_trips)
    signaling.disconnect_hooks.append(lambda conn: _forget_round_trip(round_trips, conn.sid))
    return round_trips


def _members_follow_sockets(signaling: Signaling, rooms: RoomService, blocks: BlockService) -> None:
    # A server-wide ban refuses the connection before any block list is loaded for it.
    signaling.connect_guards.extend((rooms.admit, blocks.admit))
    signaling.disconnect_hooks.append(
        lambda conn: rooms.socket_closed(conn.sid, conn.identity.user_id)
    )


def _webhooks(
    app: web.Application, config: Config, clock: Clock, rooms: RoomService, qa: QaService
) -> WebhookNotifier:
    """Room events POSTed to ``--webhook-url``s (none by default: then nothing is sent)."""
    sender = WebhookSender(
        config.webhook_urls,
        config.webhook_secret,
        config.webhooks,
        clock,
        user_agent=f"liveroom/{__version__}",
    )
    notifier = WebhookNotifier(sender, clock, rooms.get)
    rooms.observers.append(notifier)
    rooms.starts.append(notifier.room_started)
    qa.asked.append(notifier.question_asked)
    app[WEBHOOKS] = sender
    return notifier


def _block_lists(
    app: web.Application,
    sessions: async_sessionmaker[AsyncSession],
    users: UserDirectory,
    sio: LiveroomSocketServer,
    signaling: Signaling,
    clock: Clock,
    remote: RemoteSockets,
) -> BlockService:
    """Users' block lists: ``user:block``, and each blocker's list held while connected (here,
    or, several nodes, in a room run here)."""

    def sids_of_user(user_id: str) -> set[str]:
        return signaling.sids_of_user(user_id) | remote.sids_of(user_id)

    blocks = BlockService(SqlBlockStore(sessions), users, sio, sids_of_user, clock)
    user_events.register(signaling.registry, blocks)
    signaling.disconnect_hooks.append(lambda conn: blocks.socket_closed(conn.identity.user_id))
    app[BLOCKS] = blocks
    app.on_cleanup.append(_stop_blocks)
    return blocks


async def _stop_blocks(app: web.Application) -> None:
    await app[BLOCKS].stop()


def _questions(
    config: Config,
    sessions: async_sessionmaker[AsyncSession],
    rooms: RoomService,
    sio: LiveroomSocketServer,
    limits: RateLimits,
    clock: Clock,
    blocks: BlockService,
) -> QaService:
    """The rooms' Q&A: told of stage changes, and of what a user hides by blocking someone."""
    qa = QaService(
        SqlQaStore(sessions),
        rooms,
        sio,
        limits,
        clock,
        QaLimits(max_chars=config.question_max_chars, gravity=config.qa_gravity),
        blocks=blocks.index,
    )
    rooms.observers.append(qa)
    blocks.view_changed.append(qa.viewer_changed)
    return qa


def _hls(
    app: web.Application,
    config: Config,
    clock: Clock,
    rooms: RoomService,
    tokens: TokenService,
    stats: StatsService,
) -> None:
    """HLS and replays over HTTP, and what keeps replays within their retention."""
    directory = config.effective_media_dir / "hls"
    target = target_duration(config.hls_segment_s)
    app[HLS] = HlsApi(directory, rooms, tokens, target, stats.replay_played)
    app[HLS].add_routes(app)
    if CLUSTER in app:  # a room's HLS is written where the room runs: asked for there
        app[HLS].node_url = app[CLUSTER].node.url_of_room
    app.on_cleanup.append(_close_hls)
    app[RETENTION] = ReplayRetention(directory, config.replay_days * 86400, clock)


async def _close_hls(app: web.Application) -> None:
    await app[HLS].close()


def _media_engine(config: Config, clock: Clock) -> MediaEngine:
    """The rooms' audio. Its own ICE: host candidates only (``--ice-server`` lists what clients
    are given). HLS and recordings under the media dir."""
    hls = HlsSettings(config.effective_media_dir / "hls", config.hls_segment_s, config.hls_window)
    return MediaEngine(
        (),
        clock.now_ms,
        hls=hls,
        loopback_candidates=config.ice_loopback,
        public_address=config.public_address,
    )


def _socket_origins(named: tuple[str, ...]) -> Callable[[str | None, dict[str, Any]], bool] | None:
    """Which pages may open a socket: this server's own (engine.io's same-origin check, the
    default) and the sites the operator names."""
    if not named:
        return None

    def allowed(origin: str | None, environ: dict[str, Any]) -> bool:
        host = environ.get("HTTP_HOST", "")
        scheme = environ.get("HTTP_X_FORWARDED_PROTO", environ.get("wsgi.url_scheme", "http"))
        forwarded = environ.get("HTTP_X_FORWARDED_HOST", host)
        own = {f"{environ.get('wsgi.url_scheme', 'http')}://{host}", f"{scheme}://{forwarded}"}
        return origin in named or origin in own

    return allowed


def refuse_what_cannot_run(config: Config) -> None:
    """``StartupError`` for settings the server will not run with (``liveroom doctor`` too)."""
    if config.redis_url and not 0.5 <= config.lease_ttl_s <= 5:
        raise StartupError("--lease-ttl must be 0.5–5 s (a dead node's rooms move after it)")
    if not (0.1 <= config.hls_segment_s <= 10 and 2 <= config.hls_window <= 100):
        raise StartupError("--hls-segment must be 0.1–10 s and --hls-window 2–100 segments")
    if not config.replay_days > 0 or config.webrtc_audience < 0:
        # 0 days would sweep live rooms' HLS away as soon as it is written.
        raise StartupError("--replay-days must be more than 0 and --webrtc-audience at least 0")
    webhook_secret = (config.webhook_secret or "").encode()
    if config.webhook_urls and len(webhook_secret) < MIN_WEBHOOK_SECRET_BYTES:
        # Unsigned events could be forged by anyone who can reach the receiver.
        raise StartupError(
            f"--webhook-url needs a --webhook-secret of at least {MIN_WEBHOOK_SECRET_BYTES} bytes"
        )


def _listener_stats(
    config: Config,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    emitter: Emitter,
    rooms: RoomService,
    webhooks: WebhookNotifier,
) -> StatsService:
    """Listener counts and records, fed by the rooms' joins, leaves, starts and ends."""
    stats = StatsService(
        SqlStatsStore(sessions),
        clock,
        StatsConfig(sample_interval_s=config.stats_sample_interval_s, grace_s=config.stats_grace_s),
        on_record=lambda room_id, broken: _tell_record(emitter, webhooks, room_id, broken),
    )
    counting = ListenerCounting(stats, rooms.presence)
    rooms.observers.append(counting)
    rooms.first_joins.append(counting.first_join)
    return stats


async def _tell_record(
    emitter: Emitter, webhooks: WebhookNotifier, room_id: str, broken: RecordBroken
) -> None:
    """``room:record``: the room just passed the all-time record (or its host's own)."""
    webhooks.record_broken(room_id, broken)
    payload = {
        "room_id": room_id,
        "metric": broken.metric,
        "value": broken.value,
        "scope": broken.scope,
    }
    await emitter.emit("room:record", payload, room=room_channel(room_id))


async def _forget_round_trip(round_trips: RoundTrips, sid: str) -> None:
    round_trips.forget(sid)


def _serve_web_client(app: web.Application, config: Config) -> None:
    web_dir = config.web_dir or bundled_web_dir()
    if web_dir is not None:
        app.router.add_get("/", _index(web_dir))
        app.router.add_static("/", web_dir, show_index=False, follow_symlinks=False)


def _media_info(config: Config, clock: Clock, rooms: RoomService) -> MediaInfo:
    """The join ack's ``media``: how this user reaches the room's audio. WebRTC for the stage
    and for the first ``--webrtc-audience`` listeners; HLS for the rest, who hear the room
    ``hls_delay_ms`` late: the web client's hls.js keeps two segments behind the live edge, and
    a segment is listed about 0.7 of one after its audio was spoken (bench/hls_latency.py)."""
    hls_delay_ms = round(2.75 * config.hls_segment_s * 1000)

    def media_info(identity: Identity, room_id: str) -> dict[str, Any]:
        servers = ice_servers_for(
            config.ice_servers,
            config.turn_secret,
            identity.user_id,
            clock.now_ms() // 1000,
            config.turn_ttl_s,
        )
        state = rooms.state(room_id)
        on_stage = stage_model.role_of(state, identity.user_id) in STAGE
        crowded = rooms.presence.count(room_id) > config.webrtc_audience
        return {
            "mode": "hls" if crowded and not on_stage else "webrtc",
            "ice_servers": servers,
            "hls_url": f"/hls/{room_id}/{LIVE_PLAYLIST}",
            "hls_delay_ms": hls_delay_ms,
            "recording": state.settings.recording,
        }

    return media_info


def _index(web_dir: Path) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(web_dir / "index.html")

    return index


async def prepare_database(engine: AsyncEngine, url: str) -> None:
    """SQLite is upgraded in place; any other database must already be at the current schema."""
    if is_sqlite(url):
        await upgrade(engine)
        return
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise StartupError(
            f"the database schema is at {current or 'nothing'}, this server needs {head}: "
            "run `liveroom db upgrade` first"
        )


async def _database(app: web.Application) -> AsyncIterator[None]:
    engine = app[ENGINE]
    await prepare_database(engine, app[CONFIG].effective_database_url)
    yield
    await engine.dispose()


async def _background(app: web.Application) -> AsyncIterator[None]:
    await app[WEBHOOKS].start()  # first and last: whatever the rest tells it is sent
    app[USERS].start()
    app[STATS].start()  # before the rooms: restored live rooms count on
    cluster = app.get(CLUSTER)
    if cluster is not None:
        await cluster.start()  # before the rooms: they open only those this node claims
    await app[ROOMS].start()
    app[AUDIO].start()
    await app[QA].start()
    await app[PLAYLISTS].start()
    app[RETENTION].start()
    yield
    await app[RETENTION].stop()
    await app[ROOMS].stop()  # idempotent: on_shutdown stopped it already
    await app[QA].stop()
    await app[PLAYLISTS].stop()
    await app[AUDIO].stop()
    await app[STATS].stop()
    if cluster is not None:
        await cluster.stop()
    await app[USERS].stop()
    await app[WEBHOOKS].stop()


async def _tell_and_close_sockets(app: web.Application) -> None:
    """Events in progress answered, then ``server:shutdown`` to every socket, then its close.
    Again later, it finds nothing to do."""
    cluster = app.get(CLUSTER)
    if cluster is not None:
        await _quietly(cluster.node.drain(), "draining")  # no new rooms here from now on
    await app[SIGNALING].drain(app[CONFIG].shutdown_timeout_s)
    # Rooms next: sockets closing from here on are a shutdown, not members leaving.
    await app[ROOMS].stop()
    if cluster is not None:  # the other nodes take the rooms over from Redis
        await _quietly(cluster.node.hand_over(), "handing the rooms over")
    # Queued ahead of each socket's close: a client learns the server is going away (its seat
    # is held; reconnect and rejoin later) rather than seeing what looks like a network drop.
    # This node's sockets only (``ignore_queue``): not every node's.
    await app[SIO].emit(SERVER_SHUTDOWN, {"at": app[CLOCK].now_ms()}, ignore_queue=True)
    app[SIO].engine.outbox.flush()  # written before the closes, not behind them
    await app[SIGNALING].disconnect_all()


async def _bounded(work: Awaitable[None], seconds: float, what: str) -> None:
    """A shutdown step that may not hold the process: past ``seconds`` it is cut off, and
    what every task was waiting on is logged (a stuck step is a bug to find, not to wait on)."""
    try:
        async with asyncio.timeout(seconds):  # real work, not the product's clock
            await work
    except TimeoutError:
        stuck = []
        for task in asyncio.all_tasks():
            frames = task.get_stack(limit=3)
            where = " < ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in frames)
            stuck.append(f"{task.get_name()}: {where}")
        logger.error("shutdown: %s took over %.0f s; tasks:\n%s", what, seconds, "\n".join(stuck))


async def _quietly(work: Awaitable[None], what: str) -> None:
    """Shutting down: Redis away must not keep the sockets open (their leases lapse anyway)."""
    try:
        await work
    except Exception:
        logger.exception("shutdown: %s failed; the other nodes take over when leases lapse", what)


async def _close_sockets(app: web.Application) -> None:
    await _tell_and_close_sockets(app)
    # Engine.IO's service task is awaited by its shutdown; one stuck on a socket must not hold
    # the process (seen once under heavy load): bounded, then cancelled with it.
    try:
        async with asyncio.timeout(app[CONFIG].shutdown_timeout_s):  # real work, not the clock
            await app[SIO].shutdown()
    except TimeoutError:
        logger.warning("shutdown: Socket.IO's background task did not stop in time; cancelled")
    await app[SIO].engine.stop_sending()


async def _sockets_closed(sio: LiveroomSocketServer, timeout: float) -> None:
    """Wait until every client has read its socket's close and hung up, at most ``timeout``
    seconds; then cut off whoever has not (a client that stopped reading)."""
    try:
        async with asyncio.timeout(timeout):  # real network I/O, not the product's clock
            await sio.engine.idle()
    except TimeoutError:
        logger.warning("shutdown: clients still connected after %.1f s are cut off", timeout)
        for eio_sid in list(sio.engine.sockets):
            await sio.engine.abort(eio_sid)


@dataclass
class RunningServer:
    """A server listening on a TCP port, stopped by :meth:`stop` (tests, ``liveroom serve``)."""

    app: web.Application
    runner: web.AppRunner
    url: str

    async def stop(self) -> None:
        """Stop listening, close every socket while its client's answer can still be read, then
        shut down. (Once aiohttp's own shutdown has begun it ignores whatever a connection
        sends, so a websocket's closing handshake would hold the shutdown for its whole
        timeout.)"""
        limit = self.app[CONFIG].shutdown_timeout_s
        for site in self.runner.sites:
            await _bounded(site.stop(), limit, "closing the listening socket")
        await _bounded(_tell_and_close_sockets(self.app), 3 * limit, "closing the sockets")
        await _sockets_closed(self.app[SIO], limit)
        await _bounded(self.runner.cleanup(), 6 * limit + 10, "stopping the services")


async def start_server(
    config: Config, *, clock: Clock | None = None, app: web.Application | None = None
) -> RunningServer:
    """Build (unless given) and start an app on ``config.host:config.port`` (port 0: any)."""
    app = app if app is not None else create_app(config, clock=clock)
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=config.shutdown_timeout_s
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    host, port = runner.addresses[0][:2]
    return RunningServer(app, runner, f"http://{host}:{port}")
