"""200 joins and 200 leaves a second in a big room: what the server sends and spends, at two
room sizes, liveroom against the naive design (a broadcast per join and per leave).

``python bench/churn.py [--listeners 10000] [--rate 200] [--seconds 20] [--json]``

Each server runs in its own process pinned to core 0 (bench/fanout_server.py); the clients —
raw Engine.IO v4 websockets (bench/swarm.py) in several worker processes — and this driver on
core 1. In each server's room:

- **listeners** sit and read: the room is grown to the first size (``--listeners`` / 10), then to
  the second (``--listeners``), and a window is measured at each;
- **churners** (``--churners``, default 2 × ``--rate``; half of them in the room at any time) join
  and leave: every 1/``--rate`` s one outside sends ``room:join`` and one inside ``room:leave``,
  each waiting for its ack; a call that finds no churner free, or ``--in-flight`` (64) calls
  already unanswered, is not made and counted as ``skipped`` (the server is behind: an unbounded
  pile of calls would spill into the next window).

Servers:

1. **liveroom**: the app ``create_app`` builds (SQLite in a temporary directory, rate limits
   raised), a host's live room. A listener's join sends the joiner its views (ack, ``room:state``,
   ``qa:update``, ``playlist:state``) and nothing to the others at once: the room's count goes
   out at most once a second, staff views at most ten times a second (docs/protocol.md).
2. **plain**: ``socketio.AsyncServer`` where every ``room:join`` / ``room:leave`` broadcasts
   ``member_joined`` / ``member_left`` to the room before its ack: the naive design. (Its
   listeners are seated silently at connect, or seating them would be N² messages; a join or
   leave waits while more than 100,000 packets are queued unsent, else its queues would take the
   machine's memory.)

Over each ``--seconds`` window, from the server process: ``cpu_share`` (its CPU time ÷ the window:
a fraction of one core; ``idle_cpu_share``, the same over 3 s of the quiet room just before, and
``churn_cpu_share``, the difference: what the joins and leaves cost), ``frames_per_s`` (websocket
frames written to clients), ``packets_per_s`` (Engine.IO packets queued or written),
``emits_per_s`` and ``broadcasts_per_s`` (``sio.emit`` calls, and those to a room),
``handled_joins_per_s`` / ``handled_leaves_per_s`` (handlers returned, acks queued); from the
churners: the joins and leaves acked in the window per second, and the acks' p50/p99 (a saturated
naive server's acks wait behind the broadcasts queued to the churner's own socket, so they may come
after the window). ``frames_per_churn`` = frames ÷ joins and leaves handled: what one join or leave
costs in messages — a few for liveroom, the room's size for the naive design. ``load_cpu``: the
clients' and driver's CPU (core 1) over the window — near 1.0, the clients set the pace (a
saturated naive server writes more than they can read). ``growth`` compares the two sizes.

Prints a table, then one JSON line (``--json``: only that). Loopback only; everything bounded
by ``--timeout``; every process started here is stopped at the end and dies with the driver.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fanout_server import PLAIN_ROOM, Phase, phase
from bench.swarm import (
    LOAD_CPU,
    SERVER_CPU,
    ChurnCounts,
    Started,
    SwarmSpec,
    drive,
    percentile,
    pin,
    raise_fd_limit,
    two_cores,
)

SERVERS = ("liveroom", "plain")
SOCKETS_PER_WORKER = 2500
MAX_WORKERS = 8
SETTLE_S = {"liveroom": 1.2, "plain": 0.3}
"""Seconds without a frame before a window: liveroom's count goes out at most once a second
after the joins; the naive server's backlog from the previous window is written."""
IDLE_S = 3.0
"""Seconds of the quiet room measured before each window."""


@dataclass
class Plan:
    sizes: list[int]
    rate: float
    seconds: float
    churners: int
    in_flight: int
    workers: int
    connects_in_flight: int
    connect_timeout_s: float
    ping_interval_s: float


def _rate(count: float, seconds: float) -> float:
    return round(count / seconds, 2) if seconds > 0 else 0.0


def _ms(values: list[float], q: float) -> float | None:
    value = percentile(values, q)
    return None if value is None else round(value, 1)


def window_result(
    before: dict[str, Any],
    after: dict[str, Any],
    cpu_s: float,
    wall_s: float,
    counts: list[ChurnCounts],
) -> dict[str, Any]:
    """One window: the server's counters' deltas per second, the churners' tallies."""
    span = after["t"] - before["t"]
    joins = sum(c.joins for c in counts)
    leaves = sum(c.leaves for c in counts)
    frames = after["frames"] - before["frames"]

    def handled(event: str) -> int:
        return int(after["handled"].get(event, 0) - before["handled"].get(event, 0))

    served = handled("room:join") + handled("room:leave")
    join_ms = [ms for c in counts for ms in c.join_ms]
    leave_ms = [ms for c in counts for ms in c.leave_ms]
    return {
        "seconds": round(span, 2),
        "cpu_share": round(cpu_s / wall_s, 3) if wall_s > 0 else None,
        "frames_per_s": _rate(frames, span),
        "packets_per_s": _rate(after["packets"] - before["packets"], span),
        "emits_per_s": _rate(after["emits"] - before["emits"], span),
        "broadcasts_per_s": _rate(after["broadcasts"] - before["broadcasts"], span),
        "emits_per_s_by_event": {
            event: _rate(n - before["emitted"].get(event, 0), span)
            for event, n in sorted(after["emitted"].items())
            if n > before["emitted"].get(event, 0)
        },
        "joins_per_s": _rate(joins, wall_s),
        "leaves_per_s": _rate(leaves, wall_s),
        "handled_joins_per_s": _rate(handled("room:join"), span),
        "handled_leaves_per_s": _rate(handled("room:leave"), span),
        "frames_per_churn": round(frames / served, 1) if served else None,
        "join_ack_p50_ms": _ms(join_ms, 0.5),
        "join_ack_p99_ms": _ms(join_ms, 0.99),
        "leave_ack_p50_ms": _ms(leave_ms, 0.5),
        "leave_ack_p99_ms": _ms(leave_ms, 0.99),
        "skipped": sum(c.skipped for c in counts),
        "late": sum(c.late for c in counts),
        "failed": sum(c.failed for c in counts),
        "errors": [e for c in counts for e in c.errors][:3],
        "server_sockets": after["sockets"],
        "server_rss_mb": after["rss_mb"],
    }


async def measure_server(
    kind: str, plan: Plan, tmp: Path, started: Started, log: Any
) -> dict[str, Any]:
    """One server: seat the churners, then at each size a window of churn."""
    extra = ["--ping-interval", str(plan.ping_interval_s)]
    if kind == "plain":
        extra.append("--announce")

    def spec(index: int, url: str, secret: str | None, room_id: str | None) -> SwarmSpec:
        return SwarmSpec(
            index=index,
            url=url,
            secret=secret,
            room_id=room_id,
            churn_room=room_id or PLAIN_ROOM,
            listen_auth={} if secret is not None else {"enter": True},
            connects_in_flight=plan.connects_in_flight,
            connect_timeout_s=plan.connect_timeout_s,
        )

    out: dict[str, Any] = {"by_size": {}}
    async with phase(kind, kind, extra, tmp, plan.workers, spec, started) as run_:
        out["frames_source"] = run_.server.frames_source
        log(f"{kind}: at {run_.server.url}")
        churners = await run_.swarm.add_churners(plan.churners, 120 + plan.churners * 0.05)
        out["churners"] = churners.held
        if churners.failed:
            out["churner_failures"] = churners.failures
        for size in plan.sizes:
            out["by_size"][str(size)] = entry = await window(run_, size, plan, log)
            log(
                f"{kind}: {entry['listeners']} listeners: CPU {entry['cpu_share']}, "
                f"{entry['frames_per_s']} frames/s, {entry['handled_joins_per_s']} joins/s "
                f"and {entry['handled_leaves_per_s']} leaves/s handled, "
                f"{entry['frames_per_churn']} frames/churn"
            )
    out["log_problems"], out["log_first"] = run_.server.problems()
    return out


async def window(run_: Phase, size: int, plan: Plan, log: Any) -> dict[str, Any]:
    """Grow the room to ``size`` listeners; once it is quiet, churn for ``plan.seconds`` and
    read the server's counters and CPU at both ends."""
    server, swarm = run_.server, run_.swarm
    began = time.monotonic()
    grown = await swarm.grow(size, timeout=120 + 0.05 * size)
    log(
        f"{run_.kind}: {grown.held}/{size} listeners in the room "
        f"({time.monotonic() - began:.1f} s"
        + (f", {grown.failed} failed: {grown.failures[:2]}" if grown.failed else "")
        + ")"
    )
    await server.ask("quiet", cmd="quiet", quiet_s=SETTLE_S[run_.kind], timeout_s=60)
    # What the room costs with nobody coming or going (liveroom: its mixer and HLS encoder),
    # to tell churn's own cost from it.
    idle0, idle_wall0 = server.cpu_seconds(), time.monotonic()
    await asyncio.sleep(IDLE_S)
    idle_share = (server.cpu_seconds() - idle0) / (time.monotonic() - idle_wall0)
    start_at = time.monotonic() + 0.5
    churn = asyncio.create_task(
        swarm.churn(plan.rate, start_at, plan.seconds, plan.in_flight, timeout=plan.seconds + 60)
    )
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    cpu0, wall0 = server.cpu_seconds(), time.monotonic()
    load0 = swarm.cpu_seconds() + time.process_time()
    before = await server.ask("stats", cmd="stats", timeout=30)
    await asyncio.sleep(max(0.0, start_at + plan.seconds - time.monotonic()))
    cpu1, wall1 = server.cpu_seconds(), time.monotonic()
    load1 = swarm.cpu_seconds() + time.process_time()
    after = await server.ask("stats", cmd="stats", timeout=30)
    entry = window_result(before, after, cpu1 - cpu0, wall1 - wall0, await churn)
    cpu_share = entry["cpu_share"]
    entry.update(
        idle_cpu_share=round(idle_share, 3),
        churn_cpu_share=None if cpu_share is None else round(cpu_share - idle_share, 3),
        listeners=grown.held,
        asked=size,
        failed_to_connect=grown.failed,
        # The clients and this driver (core 1): near 1.0, they, not the server, set the pace.
        load_cpu=round((load1 - load0) / (wall1 - wall0), 3),
    )
    return entry


def growth(servers: dict[str, dict[str, Any]], sizes: Sequence[int]) -> None:
    """Per server: how frames/s, broadcasts/s and CPU grew from the first size to the last."""
    first, last = str(sizes[0]), str(sizes[-1])
    for run_ in servers.values():
        a, b = run_["by_size"].get(first), run_["by_size"].get(last)
        if a is None or b is None or first == last:
            run_["growth"] = None
            continue

        def times(key: str, a: dict[str, Any] = a, b: dict[str, Any] = b) -> float | None:
            return round(b[key] / a[key], 2) if a[key] and b[key] is not None else None

        run_["growth"] = {
            "listeners": times("listeners"),
            "frames_per_s": times("frames_per_s"),
            "broadcasts_per_s": times("broadcasts_per_s"),
            "cpu_share": times("cpu_share"),
            "frames_per_churn": times("frames_per_churn"),
        }


async def run(args: argparse.Namespace, started: Started, log: Any) -> dict[str, Any]:
    sizes = args.sizes or sorted({max(1, args.listeners // 10), args.listeners})
    workers = args.workers or max(2, min(MAX_WORKERS, math.ceil(sizes[-1] / SOCKETS_PER_WORKER)))
    churners = args.churners or max(4 * workers, math.ceil(2 * args.rate))
    plan = Plan(
        sizes=sizes,
        rate=args.rate,
        seconds=args.seconds,
        churners=churners,
        in_flight=args.in_flight,
        workers=workers,
        connects_in_flight=args.connects_in_flight,
        connect_timeout_s=args.connect_timeout,
        ping_interval_s=args.ping_interval,
    )
    servers: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="liveroom-churn-") as tmpdir:
        for kind in args.servers:
            servers[kind] = await measure_server(kind, plan, Path(tmpdir), started, log)
    growth(servers, sizes)
    return {
        "listeners": args.listeners,
        "sizes": sizes,
        "rate": args.rate,
        "seconds": args.seconds,
        "churners": churners,
        "in_flight": args.in_flight,
        "workers": workers,
        "pinned": two_cores(),
        "servers": servers,
    }


def table(out: dict[str, Any]) -> str:
    lines = [
        f"{out['rate']:g} joins + {out['rate']:g} leaves a second for {out['seconds']:g} s "
        f"({out['churners']} churners); server on core {SERVER_CPU}, clients on core {LOAD_CPU}"
        + ("" if out["pinned"] else " (NOT pinned: fewer than two cores)"),
        f"{'server':9} {'listeners':>9} {'cpu':>6} {'churn':>6} {'frames/s':>10} {'bcasts/s':>9} "
        f"{'handled/s':>9} {'acked/s':>8} {'frames/churn':>12} {'join p50':>9} {'p99 ms':>8} "
        f"{'skipped':>7} {'load':>5}",
    ]
    for name, run_ in out["servers"].items():
        for size in out["sizes"]:
            e = run_["by_size"].get(str(size))
            if e is None:
                continue
            lines.append(
                f"{name:9} {e['listeners']:>9} {_fmt(e['cpu_share']):>6} "
                f"{_fmt(e.get('churn_cpu_share')):>6} "
                f"{_fmt(e['frames_per_s']):>10} {_fmt(e['broadcasts_per_s']):>9} "
                f"{_fmt(e['handled_joins_per_s'] + e['handled_leaves_per_s']):>9} "
                f"{_fmt(e['joins_per_s'] + e['leaves_per_s']):>8} "
                f"{_fmt(e['frames_per_churn']):>12} {_fmt(e['join_ack_p50_ms']):>9} "
                f"{_fmt(e['join_ack_p99_ms']):>8} {e['skipped']:>7} {_fmt(e['load_cpu']):>5}"
            )
    for name, run_ in out["servers"].items():
        g = run_.get("growth")
        if g:
            lines.append(
                f"{name}: listeners ×{_fmt(g['listeners'])} → frames/s ×{_fmt(g['frames_per_s'])}, "
                f"broadcasts/s ×{_fmt(g['broadcasts_per_s'])}, CPU ×{_fmt(g['cpu_share'])}, "
                f"frames per join/leave ×{_fmt(g['frames_per_churn'])}"
            )
        if run_["log_problems"]:
            lines.append(f"{name} logged {run_['log_problems']} warnings/errors, first:")
            lines += [f"  {line}" for line in run_["log_first"][:3]]
    lines.append(
        "handled/s: joins + leaves whose handler returned (server side); acked/s: their acks "
        "received in the window (client side); load: CPU of the clients and driver (core 1)"
    )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("give one or more positive counts, comma-separated")
    return sizes


def _servers(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names or set(names) - set(SERVERS):
        raise argparse.ArgumentTypeError(f"servers are {', '.join(SERVERS)}")
    return names


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--listeners", type=int, default=10_000, help="the larger room size")
    parser.add_argument("--sizes", type=_sizes, default=None, help="N,N (default: N/10,N)")
    parser.add_argument("--rate", type=float, default=200.0, help="joins (and leaves) a second")
    parser.add_argument("--seconds", type=float, default=20.0, help="each window")
    parser.add_argument("--churners", type=int, default=0, help="default: 2 × rate")
    parser.add_argument(
        "--in-flight", type=int, default=64, help="unanswered churn calls at most (all workers)"
    )
    parser.add_argument("--servers", type=_servers, default=list(SERVERS), help="which, in order")
    parser.add_argument("--workers", type=int, default=0, help="client processes (default: auto)")
    parser.add_argument("--connects-in-flight", type=int, default=8, help="per worker")
    parser.add_argument("--connect-timeout", type=float, default=30.0, help="per socket, s")
    parser.add_argument("--ping-interval", type=float, default=600.0, help="Engine.IO, s")
    parser.add_argument("--timeout", type=float, default=0, help="overall limit, s (default: auto)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    if args.listeners < 1 or args.rate <= 0 or args.seconds <= 0:
        parser.error("--listeners must be ≥ 1, --rate and --seconds > 0")
    return args


def default_timeout(args: argparse.Namespace) -> float:
    biggest: int = max(args.sizes) if args.sizes else args.listeners
    sizes = len(args.sizes) if args.sizes else 2
    seconds: float = args.seconds
    per_server = 120 + 0.05 * biggest + sizes * (seconds + 40)
    return 120.0 + len(args.servers) * per_server


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pin(LOAD_CPU)
    fds = raise_fd_limit()
    biggest = max(args.sizes) if args.sizes else args.listeners
    if fds < biggest + 2 * args.rate + 200:
        sys.stderr.write(
            f"churn.py: RLIMIT_NOFILE is {fds} (hard): the server cannot hold {biggest} "
            "listeners and the churners; raise it (ulimit -Hn) or expect refused connections\n"
        )

    def log(message: str) -> None:
        if not args.json:
            print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    out = drive(
        "churn.py", lambda started: run(args, started, log), args.timeout or default_timeout(args)
    )
    if isinstance(out, int):
        return out
    if not args.json:
        print(table(out))
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
