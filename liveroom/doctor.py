"""``liveroom doctor``: is this configuration ready to serve? One line per check, in plain words.

Each check reads, never changes: no database is created or migrated, no secret written, no
directory made, nothing contacted but the configured database and Redis. Each has a time limit.
A failure (``✗``) means ``serve`` would refuse to start or would misbehave; a warning (``!``)
is worth a look but not fatal.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import shutil
import stat
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import redis.asyncio as aioredis
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from yarl import URL

from liveroom.app import refuse_what_cannot_run
from liveroom.config import MIN_SECRET_BYTES, SECRET_FILE, Config
from liveroom.db.migrate import alembic_config, current_revision, head_revision
from liveroom.db.session import create_engine, is_sqlite
from liveroom.errors import LiveroomError
from liveroom.webhooks.model import MIN_SECRET_BYTES as MIN_WEBHOOK_SECRET_BYTES

DEFAULT_TIMEOUT_S = 5.0
LOW_DISK_BYTES = 1024**3
ICE_SCHEMES = ("stun", "stuns", "turn", "turns")


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


MARKS = {Status.OK: "✓", Status.WARN: "!", Status.FAIL: "✗"}


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    status: Status
    message: str

    def line(self) -> str:
        return f"{MARKS[self.status]} {self.check}: {self.message}"


Check = Callable[[Config], Awaitable[Finding]]


async def examine(config: Config, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Finding]:
    """Every check, in order, each given at most ``timeout_s`` seconds."""
    checks: list[tuple[str, Check]] = [
        ("settings", _settings),
        ("secret", _secret),
        ("data dir", _data_dir),
        ("database", _database),
        ("redis", _redis),
        ("media dir", _media_dir),
        ("ice", _ice),
        ("webhooks", _webhooks),
    ]
    findings = []
    for name, check in checks:
        try:
            async with asyncio.timeout(timeout_s):
                findings.append(await check(config))
        except TimeoutError:
            findings.append(Finding(name, Status.FAIL, f"no answer within {timeout_s:g} s"))
        except Exception as e:  # a check that breaks is a finding, not a traceback
            findings.append(Finding(name, Status.FAIL, _plain(e)))
    return findings


def healthy(findings: list[Finding]) -> bool:
    return all(f.status is not Status.FAIL for f in findings)


def _plain(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


# --- the checks ---------------------------------------------------------------------------------


async def _settings(config: Config) -> Finding:
    try:
        refuse_what_cannot_run(config)
    except LiveroomError as e:
        return Finding("settings", Status.FAIL, e.message)
    return Finding("settings", Status.OK, "the server accepts these settings")


async def _secret(config: Config) -> Finding:
    if config.secret:
        size = len(config.secret.encode())
        if size < MIN_SECRET_BYTES:
            return Finding(
                "secret",
                Status.FAIL,
                f"--secret is {size} bytes; it must be at least {MIN_SECRET_BYTES}",
            )
        return Finding("secret", Status.OK, f"given ({size} bytes)")
    path = config.data_dir / SECRET_FILE
    if not path.exists():
        return Finding("secret", Status.OK, f"none yet: the first start writes one to {path}")
    try:
        size = len(path.read_text().strip().encode())
        mode = path.stat().st_mode
    except OSError as e:
        return Finding("secret", Status.FAIL, f"cannot read {path}: {e.strerror or e}")
    if size < MIN_SECRET_BYTES:
        return Finding(
            "secret",
            Status.FAIL,
            f"{path} holds {size} bytes; a secret must be at least {MIN_SECRET_BYTES}",
        )
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Finding("secret", Status.WARN, f"{path} is readable by others: chmod 600 {path}")
    return Finding("secret", Status.OK, f"kept in {path} ({size} bytes)")


async def _data_dir(config: Config) -> Finding:
    problem, note = _writable_dir(config.data_dir)
    if problem:
        return Finding("data dir", Status.FAIL, problem)
    return Finding("data dir", Status.OK, note)


async def _database(config: Config) -> Finding:
    url = config.effective_database_url
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return Finding("database", Status.FAIL, "--database-url is not a database URL")
    sqlite = is_sqlite(url)
    missing = _missing_sqlite_file(url) if sqlite else None
    if missing:  # connecting would create it: say what serve will do instead
        return Finding("database", Status.OK, f"no SQLite file yet at {missing}: `serve` makes it")
    engine = create_engine(url)
    try:
        try:
            current = await current_revision(engine)
        except (OSError, SQLAlchemyError) as e:
            return Finding("database", Status.FAIL, f"cannot connect to {shown}: {_plain(e)}")
    finally:
        await engine.dispose()
    head = head_revision()
    known = {r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current == head:
        return Finding("database", Status.OK, f"{shown}, schema at {head} (current)")
    if current is not None and current not in known:
        return Finding(
            "database",
            Status.FAIL,
            f"{shown} is at schema {current}, which this liveroom does not know (a newer one?)",
        )
    at = f"schema at {current}" if current else "no schema yet"
    if sqlite:
        return Finding(
            "database", Status.WARN, f"{shown}: {at}, `serve` upgrades SQLite to {head} itself"
        )
    return Finding(
        "database", Status.FAIL, f"{shown}: {at}, needs {head}: run `liveroom db upgrade`"
    )


async def _redis(config: Config) -> Finding:
    if not config.redis_url:
        return Finding("redis", Status.OK, "not used (one node, live state in memory)")
    shown = _without_password(config.redis_url)
    client = aioredis.Redis.from_url(config.redis_url)
    try:
        await client.ping()
    except (OSError, aioredis.RedisError) as e:
        return Finding("redis", Status.FAIL, f"no PING answer from {shown}: {_plain(e)}")
    finally:
        await client.aclose()
    return Finding("redis", Status.OK, f"{shown} answers PING")


async def _media_dir(config: Config) -> Finding:
    media = config.effective_media_dir
    problem, note = _writable_dir(media)
    if problem:
        return Finding("media dir", Status.FAIL, problem)
    free = shutil.disk_usage(_existing_ancestor(media)).free
    room = f"{note}; {free / 1024**3:.1f} GiB free"
    if free < config.media_max_bytes:
        return Finding("media dir", Status.FAIL, f"{room}: less than one upload may take")
    if free < LOW_DISK_BYTES:
        return Finding("media dir", Status.WARN, f"{room}: HLS and replays will fill it soon")
    return Finding("media dir", Status.OK, room)


async def _ice(config: Config) -> Finding:
    return ice_finding(config)


def ice_finding(config: Config) -> Finding:
    """The ICE servers clients are given, the TURN secret and the loopback switch, judged:
    every problem in one line, failures first."""
    failures = [
        f"{url!r}: {problem}"
        for url in config.ice_servers
        if (problem := ice_url_problem(url)) is not None
    ]
    turns = [u for u in config.ice_servers if u.lower().startswith(("turn:", "turns:"))]
    if turns and not config.turn_secret:
        failures.append(
            f"{turns[0]} is a TURN server but --turn-secret is not set: "
            "clients get no credentials and cannot use it"
        )
    warnings = []
    if config.ice_loopback and not _loopback_host(config.host):
        warnings.append(
            f"--ice-loopback offers only 127.0.0.1 while listening on {config.host}: "
            "clients on other machines will hear nothing"
        )
    if config.turn_secret and not turns:
        warnings.append("--turn-secret is set but no TURN server is listed")
    if failures or warnings:
        status = Status.FAIL if failures else Status.WARN
        return Finding("ice", status, "; ".join(failures + warnings))
    if not config.ice_servers:
        return Finding(
            "ice",
            Status.OK,
            "no STUN/TURN servers (none by default): clients behind strict NATs need a TURN server",
        )
    return Finding("ice", Status.OK, f"{len(config.ice_servers)} server(s) for clients")


def ice_url_problem(url: str) -> str | None:
    """What is wrong with one ``--ice-server`` URL (RFC 7064/7065), or ``None``."""
    scheme, colon, rest = url.partition(":")
    if not colon or scheme.lower() not in ICE_SCHEMES:
        return "must start with stun:, stuns:, turn: or turns:"
    address, _, query = rest.partition("?")
    if not address or address.startswith("//") or "@" in address:
        return "write it as scheme:host[:port] (no // and no user@)"
    host, port = address, ""
    if address.startswith("["):
        host, _, port = address[1:].partition("]")
        port = port.removeprefix(":")
    elif address.count(":") == 1:
        host, port = address.split(":")
    if not host or any(c.isspace() for c in host):
        return "no host"
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return f"bad port {port!r}"
    if query:
        if scheme.lower() not in ("turn", "turns"):
            return "only TURN URLs take ?transport="
        if query.lower() not in ("transport=udp", "transport=tcp"):
            return "the only parameter is ?transport=udp or ?transport=tcp"
    return None


async def _webhooks(config: Config) -> Finding:
    if not config.webhook_urls:
        return Finding("webhooks", Status.OK, "none: no events are sent anywhere")
    size = len((config.webhook_secret or "").encode())
    if size < MIN_WEBHOOK_SECRET_BYTES:
        return Finding(
            "webhooks",
            Status.FAIL,
            f"--webhook-secret is {size} bytes; at least {MIN_WEBHOOK_SECRET_BYTES} are needed",
        )
    plain = [u for u in config.webhook_urls if u.lower().startswith("http://")]
    count = f"{len(config.webhook_urls)} URL(s), signed"
    if plain and not all(_loopback_url(u) for u in plain):
        return Finding("webhooks", Status.WARN, f"{count}; {plain[0]} is not https")
    return Finding("webhooks", Status.OK, count)


# --- helpers ------------------------------------------------------------------------------------


def _missing_sqlite_file(url: str) -> str | None:
    database = make_url(url).database
    if database and database != ":memory:" and not Path(database).exists():
        return database
    return None


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable_dir(path: Path) -> tuple[str | None, str]:
    """``(problem, note)``: a directory the server can write in, or say why not. Nothing is
    created: a missing directory is judged by the nearest one that exists."""
    if path.exists():
        if not path.is_dir():
            return f"{path} is not a directory", ""
        try:
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as e:
            return f"{path} is not writable: {e.strerror or e}", ""
        return None, f"{path} is writable"
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        return f"{path} cannot be created: {ancestor} is not a directory", ""
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{path} cannot be created: {ancestor} is not writable", ""
    return None, f"{path} will be created"


def _loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loopback_url(url: str) -> bool:
    return _loopback_host(URL(url).host or "")


def _without_password(url: str) -> str:
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url
