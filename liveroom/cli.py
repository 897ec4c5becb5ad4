"""``liveroom serve | doctor | token | db upgrade | rankings | bot | docs``."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from liveroom import __version__, doctor, permissions_doc
from liveroom.app import StartupError, start_server
from liveroom.auth import Grants, Identity, TokenService, clean_name, normalise_market
from liveroom.client import CallFailed, Refused
from liveroom.clock import SystemClock
from liveroom.config import Config, add_arguments, load_config
from liveroom.db.migrate import current_revision, head_revision, upgrade
from liveroom.db.session import create_engine, session_factory
from liveroom.errors import LiveroomError
from liveroom.logs import configure_logging
from liveroom.ratelimit import render_limits_doc
from liveroom.stats.model import Metric
from liveroom.stats.queries import Period, parse_rankings
from liveroom.stats.rankings import SqlRankings, render_rooms

logger = logging.getLogger("liveroom")

DEFAULT_TOKEN_TTL_S = 30 * 24 * 3600


def version() -> str:
    """The installed package's version (its metadata), or the source tree's."""
    try:
        return importlib.metadata.version("liveroom")
    except importlib.metadata.PackageNotFoundError:
        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liveroom", description=__doc__)
    parser.add_argument("--version", action="version", version=f"liveroom {version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    add_arguments(serve)

    check = sub.add_parser(
        "doctor", help="check the configuration, database, Redis, media dir and ICE settings"
    )
    add_arguments(check)
    check.add_argument(
        "--timeout",
        type=float,
        default=doctor.DEFAULT_TIMEOUT_S,
        help="seconds each check may take (default: %(default)s)",
    )

    token = sub.add_parser("token", help="print a token signed with the server's secret")
    add_arguments(token, only={"data_dir", "secret", "log_level"})
    token.add_argument("--user", required=True, help="user id (the token's sub)")
    token.add_argument("--name", required=True, help="display name")
    token.add_argument("--host", dest="grant_host", action="store_true", help="may create rooms")
    token.add_argument(
        "--admin", action="store_true", help="acts as host anywhere, bans server-wide"
    )
    token.add_argument("--verified", action="store_true", help="a verified account")
    token.add_argument("--market", help="ISO 3166 alpha-2 market, e.g. KR")
    token.add_argument("--ttl", type=int, default=DEFAULT_TOKEN_TTL_S, help="lifetime, seconds")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply migrations up to the current schema")
    add_arguments(up, only={"data_dir", "database_url", "log_level"})

    rankings = sub.add_parser("rankings", help="print the most listened rooms as a table")
    add_arguments(rankings, only={"data_dir", "database_url", "log_level"})
    rankings.add_argument("--metric", choices=[m.value for m in Metric], default="peak")
    rankings.add_argument("--period", choices=[p.value for p in Period], default="all")
    rankings.add_argument("--market", help="listeners from this market only (ISO 3166 alpha-2)")
    rankings.add_argument("--host", dest="host_id", help="this host's rooms only (user id)")
    rankings.add_argument("--limit", type=int, default=20, help="how many rooms (1–100)")

    bot = sub.add_parser("bot", help="a scripted member: play a file into a room, or record it")
    bot.add_argument("--server", required=True, help="e.g. http://127.0.0.1:8080")
    bot.add_argument("--token", required=True)
    bot.add_argument("--room", required=True, help="room id")
    mode = bot.add_mutually_exclusive_group(required=True)
    mode.add_argument("--play", type=Path, help="audio file to publish from the bot's stage role")
    mode.add_argument("--listen", action="store_true", help="only listen")
    bot.add_argument("--record", type=Path, help="write what the bot hears to this WAV file")
    bot.add_argument("--seconds", type=float, help="stop after this long (default: run on)")
    bot.add_argument(
        "--ice-loopback",
        action="store_true",
        help="offer 127.0.0.1 candidates only (a server on this machine)",
    )

    docs = sub.add_parser("docs", help="print generated documentation")
    docs.add_argument("which", choices=["permissions", "limits"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "bot":
        return _bot(args)
    if args.command == "docs":
        sys.stdout.write(
            permissions_doc.render() if args.which == "permissions" else render_limits_doc()
        )
        return 0
    if args.command == "doctor":
        return _doctor(args)
    try:
        config = load_config(args)
    except ValueError as e:
        parser.error(str(e))
    configure_logging(config.log_level, config.log_format)
    try:
        if args.command == "serve":
            Path(config.data_dir).mkdir(parents=True, exist_ok=True)
            return asyncio.run(_serve(config))
        if args.command == "token":
            print(_token(config, args))
            return 0
        if args.command == "rankings":
            return asyncio.run(_rankings(config, args))
        return asyncio.run(_db_upgrade(config))
    except (LiveroomError, ValueError) as e:  # bad input or configuration: say it plainly
        print(f"liveroom: {e}", file=sys.stderr)
        return 2


def _doctor(args: argparse.Namespace) -> int:
    """One line per check; 0 when nothing failed, 1 otherwise."""
    try:
        config = load_config(args)
    except ValueError as e:
        print(f"{doctor.MARKS[doctor.Status.FAIL]} configuration: {e}")
        return 1
    findings = asyncio.run(doctor.examine(config, args.timeout))
    for finding in findings:
        print(finding.line())
    return 0 if doctor.healthy(findings) else 1


def _bot(args: argparse.Namespace) -> int:
    from liveroom.client.bot import BotPlan, run_bot  # noqa: PLC0415  (aiortc only when needed)
    from liveroom.media.ice import use_loopback_candidates  # noqa: PLC0415

    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.play is not None and not args.play.is_file():
        print(f"liveroom: no such file: {args.play}", file=sys.stderr)
        return 2
    use_loopback_candidates(args.ice_loopback)
    plan = BotPlan(
        args.server.rstrip("/"), args.token, args.room, args.play, args.record, args.seconds
    )
    try:
        return asyncio.run(run_bot(plan))
    except CallFailed as e:
        print(f"liveroom: {e}", file=sys.stderr)
        return 1
    except Refused as e:
        print(f"liveroom: connection refused: {e.reason}", file=sys.stderr)
        return 1


def _token(config: Config, args: argparse.Namespace) -> str:
    config = config.with_secret()
    assert config.secret is not None
    identity = Identity(
        user_id=args.user,
        name=clean_name(args.name),
        verified=args.verified,
        market=normalise_market(args.market) if args.market else None,
        grants=Grants(host=args.grant_host, admin=args.admin),
    )
    return TokenService(config.secret, SystemClock(), args.ttl).issue(identity, args.ttl)


async def _db_upgrade(config: Config) -> int:
    engine = create_engine(config.effective_database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    print(f"database at {head_revision()}")
    return 0


async def _rankings(config: Config, args: argparse.Namespace) -> int:
    """The same query as ``GET /api/rankings``, read straight from the database."""
    params = {"metric": args.metric, "period": args.period, "limit": str(args.limit)}
    params |= {k: v for k, v in (("market", args.market), ("host", args.host_id)) if v}
    query = parse_rankings(params)
    engine = create_engine(config.effective_database_url)
    try:
        if await current_revision(engine) is None:
            raise ValueError("the database has no schema yet: run `liveroom db upgrade`")
        ranks = await SqlRankings(session_factory(engine)).rooms(query, SystemClock().now_ms())
    finally:
        await engine.dispose()
    print(render_rooms(ranks, query.metric) if ranks else "no rooms in this period")
    return 0


async def _serve(config: Config) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        server = await start_server(config)  # raises StartupError before binding on bad config
    except (StartupError, OSError) as e:  # schema behind, port taken, data dir unwritable
        print(f"liveroom: cannot start: {e}", file=sys.stderr)
        return 1
    logger.info("liveroom %s listening on %s", __version__, server.url)
    await stop.wait()
    logger.info("shutting down")
    await server.stop()
    logger.info("stopped")
    return 0
