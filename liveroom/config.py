"""Configuration: one table of options read from the command line and ``LIVEROOM_*`` variables.

:data:`OPTIONS` drives the ``serve`` command's arguments, the environment lookup and the
README's configuration table (a test keeps them in agreement). Precedence: command line, then
environment, then the default.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from liveroom.ratelimit import RateLimit, parse_rate_limits
from liveroom.webhooks.model import WebhookPolicy

logger = logging.getLogger(__name__)

DEFAULT_REACTIONS = ("❤️", "🔥", "👏", "😂", "😮", "😢", "💯", "🙏", "🎉", "👋")
SECRET_FILE = "secret"  # noqa: S105  (a file name, not a secret)
MIN_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("data")
    database_url: str | None = None
    redis_url: str | None = None
    node_id: str | None = None
    node_url: str | None = None
    public_address: str | None = None
    cluster_name: str = "liveroom"
    lease_ttl_s: float = 5.0
    secret: str | None = None
    guests: bool = True
    guest_token_ttl_s: int = 24 * 3600
    log_level: str = "info"
    log_format: str = "text"
    metrics: bool = True
    metrics_token: str | None = None
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    socket_queue_limit: int = 512
    socket_inflight_limit: int = 32
    max_message_bytes: int = 64 * 1024
    web_dir: Path | None = None
    speaker_grace_s: float = 30.0
    host_grace_s: float = 60.0
    reactions: tuple[str, ...] = DEFAULT_REACTIONS
    ice_servers: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    turn_secret: str | None = None
    turn_ttl_s: int = 6 * 3600
    ice_loopback: bool = False
    question_max_chars: int = 280
    media_max_bytes: int = 50 * 1024 * 1024
    media_room_bytes: int = 1024 * 1024 * 1024
    media_total_bytes: int = 20 * 1024 * 1024 * 1024
    skip_share: float = 0.5
    playlist_ready_timeout_s: float = 5.0
    qa_gravity: float = 1.8
    shutdown_timeout_s: float = 5.0
    stats_sample_interval_s: float = 10.0
    stats_grace_s: float = 10.0
    media_dir: Path | None = None
    hls_segment_s: float = 1.0
    hls_window: int = 6
    webrtc_audience: int = 500
    replay_days: float = 30.0
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str | None = None
    webhooks: WebhookPolicy = field(default_factory=WebhookPolicy)

    @property
    def effective_media_dir(self) -> Path:
        """Uploads and HLS (``hls/{room_id}/``): the configured dir, or ``media`` in the data
        dir."""
        return self.media_dir or self.data_dir / "media"

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or a SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'liveroom.db').resolve()}"

    def with_secret(self) -> Config:
        """This config with its secret resolved: given, or kept in the data dir (made once)."""
        if self.secret:
            if len(self.secret.encode()) < MIN_SECRET_BYTES:
                raise ValueError(f"the secret must be at least {MIN_SECRET_BYTES} bytes")
            return self
        return replace(self, secret=load_or_create_secret(self.data_dir))


def load_or_create_secret(data_dir: Path) -> str:
    """Read ``data_dir/secret``, or write a new random one readable by its owner only."""
    path = data_dir / SECRET_FILE
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        pass
    else:
        if len(text.encode()) >= MIN_SECRET_BYTES:
            return text
        raise ValueError(f"{path} holds a secret shorter than {MIN_SECRET_BYTES} bytes")
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    # O_EXCL: if another process made it first, use theirs rather than overwrite it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create_secret(data_dir)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    logger.info("generated a new secret in %s", path)
    return value


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its flag, its variable, how to parse it and what it means."""

    name: str  # the Config field
    flag: str
    help: str
    parse: Callable[[str], Any] = str
    is_switch_off: bool = False  # a --no-x flag that sets a True default to False
    is_switch_on: bool = False  # a --x flag that sets a False default to True
    repeatable: bool = False  # a flag given once per value; comma-separated in the environment

    @property
    def env(self) -> str:
        return "LIVEROOM_" + self.name.upper()


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _level(text: str) -> str:
    level = text.strip().lower()
    if level not in {"debug", "info", "warning", "error"}:
        raise ValueError(f"log level must be debug, info, warning or error, not {text!r}")
    return level


def _log_format(text: str) -> str:
    value = text.strip().lower()
    if value not in {"text", "json"}:
        raise ValueError(f"log format must be text or json, not {text!r}")
    return value


def _emoji_list(text: str) -> tuple[str, ...]:
    emoji = tuple(e.strip() for e in text.split(",") if e.strip())
    if not emoji or any(len(e) > 16 for e in emoji):
        raise ValueError("give one or more emoji, comma-separated")
    return emoji


def _http_url(text: str) -> str:
    """An ``http://`` or ``https://`` URL with a host, as written."""
    url = text.strip()
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if scheme.lower() not in {"http", "https"} or not host or any(c.isspace() for c in url):
        raise ValueError(f"not an http(s) URL: {text!r}")
    return url


def _address(text: str) -> str:
    """An IP address, as written (``ValueError`` for anything else)."""
    ipaddress.ip_address(text.strip())
    return text.strip()


def _network(text: str) -> str:
    """An address or network, as written (``ValueError`` for anything else)."""
    ipaddress.ip_network(text.strip(), strict=False)
    return text.strip()


OPTIONS: tuple[Option, ...] = (
    Option("host", "--host", "address to listen on", str),
    Option("port", "--port", "port to listen on", int),
    Option("data_dir", "--data-dir", "where the SQLite file, secret and media live", Path),
    Option("database_url", "--database-url", "SQLAlchemy URL; default: SQLite in the data dir"),
    Option("redis_url", "--redis-url", "Redis URL: run as one of several nodes sharing it"),
    Option("node_id", "--node-id", "this node's name among several (default: host, port, random)"),
    Option(
        "node_url", "--node-url", "how other nodes reach this one over HTTP (default: its address)"
    ),
    Option(
        "public_address",
        "--public-address",
        "the IP clients reach this node's WebRTC at, when a 1:1 NAT maps it (a cloud VM)",
        _address,
    ),
    Option("cluster_name", "--cluster-name", "prefix of the cluster's Redis keys and channels"),
    Option(
        "lease_ttl_s", "--lease-ttl", "seconds before a dead node's rooms move (at most 5)", float
    ),
    Option("secret", "--secret", "token signing key (≥ 32 bytes); default: made once, kept"),
    Option("guests", "--no-guests", "refuse guest tokens at POST /api/tokens", _bool, True),
    Option("guest_token_ttl_s", "--guest-token-ttl", "guest token lifetime, seconds", int),
    Option("log_level", "--log-level", "debug, info, warning or error", _level),
    Option(
        "log_format",
        "--log-format",
        "`text`, or `json`: one object a line, with `room_id`/`user_id` (docs/operations.md)",
        _log_format,
    ),
    Option(
        "metrics",
        "--no-metrics",
        "serve no Prometheus metrics at /metrics (default: to private networks only)",
        _bool,
        True,
    ),
    Option(
        "metrics_token",
        "--metrics-token",
        "Bearer token for /metrics: then from anywhere, and only with it",
    ),
    Option(
        "rate_limits",
        "--rate-limits",
        "override limits: `name=COUNT/SECONDS,...`",
        parse_rate_limits,
    ),
    Option(
        "socket_queue_limit",
        "--socket-queue-limit",
        "packets queued to one socket before it is dropped",
        int,
    ),
    Option(
        "socket_inflight_limit",
        "--socket-inflight-limit",
        "events one socket may have in progress at once",
        int,
    ),
    Option("max_message_bytes", "--max-message-bytes", "largest frame a client may send", int),
    Option(
        "ice_servers",
        "--ice-server",
        "STUN/TURN URL for clients and the server (repeat)",
        repeatable=True,
    ),
    Option(
        "cors_origins",
        "--cors-origin",
        "another site's origin allowed to call the API and connect (repeat; default: none)",
        repeatable=True,
    ),
    Option(
        "trusted_proxies",
        "--trusted-proxy",
        "address or network of a reverse proxy whose X-Forwarded-For is believed (repeat)",
        _network,
        repeatable=True,
    ),
    Option("turn_secret", "--turn-secret", "coturn use-auth-secret key: TURN credentials per user"),
    Option("turn_ttl_s", "--turn-ttl", "TURN credential lifetime, seconds", int),
    Option(
        "ice_loopback",
        "--ice-loopback",
        "offer only 127.0.0.1 ICE candidates (tests, demos)",
        _bool,
        is_switch_on=True,
    ),
    Option(
        "question_max_chars",
        "--question-max-chars",
        "longest question, in characters (Unicode code points) after trimming",
        int,
    ),
    Option("qa_gravity", "--qa-gravity", "how fast age sinks a question in `hot` order", float),
    Option(
        "media_max_bytes", "--media-max-bytes", "largest media file a room's staff may upload", int
    ),
    Option(
        "media_room_bytes",
        "--media-room-bytes",
        "most bytes of uploads one room may keep",
        int,
    ),
    Option(
        "media_total_bytes",
        "--media-total-bytes",
        "most bytes of uploads the server keeps, all rooms together",
        int,
    ),
    Option(
        "skip_share",
        "--skip-share",
        "share of the members present whose votes skip a playlist item",
        float,
    ),
    Option(
        "playlist_ready_timeout_s",
        "--playlist-ready-timeout",
        "seconds a new playlist item waits for players to load it (0: no wait)",
        float,
    ),
    Option(
        "stats_sample_interval_s",
        "--stats-sample-interval",
        "seconds between listener-count samples (and the batched writes of the counts)",
        float,
    ),
    Option(
        "stats_grace_s",
        "--stats-grace",
        "seconds a listener may be gone and come back as the same presence",
        float,
    ),
    Option("media_dir", "--media-dir", "uploads and HLS segments (default: DATA_DIR/media)", Path),
    Option("hls_segment_s", "--hls-segment", "HLS target segment duration, seconds", float),
    Option("hls_window", "--hls-window", "segments the live HLS playlist lists", int),
    Option(
        "webrtc_audience",
        "--webrtc-audience",
        "listeners on WebRTC before newcomers get HLS (speakers: always WebRTC)",
        int,
    ),
    Option("replay_days", "--replay-days", "days a replay is kept before it is deleted", float),
    Option(
        "webhook_urls",
        "--webhook-url",
        "URL that receives room events as signed POSTs (repeat; default: none, nothing is sent)",
        _http_url,
        repeatable=True,
    ),
    Option(
        "webhook_secret",
        "--webhook-secret",
        "key that signs webhook bodies (≥ 16 bytes; needed with `--webhook-url`)",
    ),
    Option(
        "web_dir",
        "--web-dir",
        "static web client served at / (default: `web/` of the checkout)",
        Path,
    ),
)


def add_arguments(parser: argparse.ArgumentParser, only: set[str] | None = None) -> None:
    """Add the options (or those named in ``only``) to ``parser``."""
    for opt in OPTIONS:
        if only is not None and opt.name not in only:
            continue
        if opt.is_switch_off or opt.is_switch_on:
            parser.add_argument(
                opt.flag,
                dest=opt.name,
                action="store_const",
                const=opt.is_switch_on,
                default=None,
                help=f"{opt.help} [{opt.env}]",
            )
        elif opt.repeatable:
            parser.add_argument(
                opt.flag,
                dest=opt.name,
                action="append",
                default=None,
                help=f"{opt.help} [{opt.env}, comma-separated]",
            )
        else:
            parser.add_argument(
                opt.flag, dest=opt.name, default=None, help=f"{opt.help} [{opt.env}]"
            )


def load_config(
    args: argparse.Namespace | None = None,
    environ: Mapping[str, str] | None = None,
    base: Config | None = None,
) -> Config:
    """Build a :class:`Config` from parsed arguments over environment variables over defaults.

    Raises ``ValueError`` naming the option when a value does not parse.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        raw: Any = getattr(args, opt.name, None) if args is not None else None
        if raw is None and opt.env in env:
            raw = env[opt.env]
            if opt.repeatable:
                raw = [part.strip() for part in raw.split(",") if part.strip()]
        if raw is None:
            continue
        if opt.repeatable:
            try:
                values[opt.name] = tuple(opt.parse(item) for item in raw)
            except ValueError as e:
                raise ValueError(f"{opt.flag} / {opt.env}: {e}") from None
            continue
        if isinstance(raw, str):
            try:
                raw = opt.parse(raw)
            except ValueError as e:
                raise ValueError(f"{opt.flag} / {opt.env}: {e}") from None
        values[opt.name] = raw
    config = replace(base or Config(), **values)
    if config.port < 0 or config.port > 65535:
        raise ValueError(f"--port / LIVEROOM_PORT: {config.port} is not a port")
    return config


def option_table(options: Sequence[Option] = OPTIONS) -> str:
    """The README's configuration table, in Markdown."""
    defaults = Config()
    rows = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    for opt in options:
        default = getattr(defaults, opt.name)
        shown = "on" if default is True else "—" if default in (None, {}) else f"`{default}`"
        rows.append(f"| `{opt.flag}` | `{opt.env}` | {shown} | {opt.help} |")
    return "\n".join(rows)
