"""One room, N websocket clients, one broadcast: what it costs the server per recipient — liveroom
against plain python-socketio and a bare-websocket floor, in the same run.

``python bench/fanout.py [--sockets 1000,5000,10000] [--repeats 5] [--json]``

Three servers, one after the other, each in its own process pinned to core 0
(bench/fanout_server.py); the clients — raw Engine.IO v4 websockets (bench/swarm.py) in several
worker processes — and this driver on core 1. Each server's room grows to each N in turn, and
at each N the broadcast is made ``--repeats`` times, ``--pause`` seconds apart:

1. **liveroom**: the app ``create_app`` builds, SQLite in a temporary directory, rate limits
   raised. A host (here, in the driver) creates a live room; every client joins it with its own
   token (``room:join``). The host changes the room's title (``room:update``); the server then
   broadcasts the new audience view (``room:state``) to the room once — the measured broadcast.
   With ``--redis-url`` liveroom is measured a second time as one node of a cluster on that Redis
   (``liveroom_redis``: every broadcast goes through ``AsyncRedisManager``'s publish).
2. **plain**: ``socketio.AsyncServer(async_mode="aiohttp")``, every client in one room from its
   connect; the server emits ``room:state`` to that room, padded to liveroom's frame size.
3. **floor**: bare aiohttp websockets; one text frame of the same size, built once, written to
   each socket's transport in a loop.

Measured in the server process, per broadcast: ``us_per_recipient`` (process CPU from the emit
until the last frame is written, ÷ N), ``last_frame_ms`` (emit → N frames written),
``max_loop_stall_ms`` (largest overshoot of a 5 ms sleeper meanwhile: above 20 ms a media tick
would have been late), ``mixer_late_ticks`` (liveroom: ticks its room's mixer lost during the
broadcasts, summed over the repeats). In the clients: ``client_p50_ms`` / ``client_p99_ms``,
receipt time − emit time (one machine, one CLOCK_MONOTONIC; the clients' own core is the limit
here, so this is a secondary figure). Each figure is the median over the repeats;
``ratio_to_floor`` divides ``us_per_recipient`` by the floor's at the same N. ``delivered`` counts
receipts: every socket must get every broadcast. ``us_per_recipient_net`` takes off the server's
idle CPU (measured while it waited for the room to be quiet: liveroom's mixer, timers, Engine.IO's
service task).

Both Socket.IO servers ping every ``--ping-interval`` seconds (600, not Engine.IO's 25): no ping
or pong falls inside a measured broadcast, so the frames counted are the broadcast's. The
``liveroom_redis`` run uses a cluster name of its own and deletes its keys afterwards.

Prints a table, then one JSON line (``--json``: only that line). Loopback only; everything is
bounded by ``--timeout``; every process started here is stopped at the end, and dies with the
driver (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis.asyncio import Redis

from bench.fanout_server import Phase, phase
from bench.swarm import (
    LOAD_CPU,
    MARK,
    SERVER_CPU,
    Started,
    SwarmSpec,
    drive,
    median,
    percentile,
    pin,
    raise_fd_limit,
    two_cores,
)

SERVERS = ("liveroom", "plain", "floor")
SOCKETS_PER_WORKER = 2500
MAX_WORKERS = 8
DEFAULT_FRAME_BYTES = 700  # without liveroom in the run: about its audience view's size
LIVEROOM_QUIET_S = 1.2
"""Seconds without a frame before measuring liveroom: its count goes out at most once a second
after the joins. The baselines send nothing unasked (:data:`BASELINE_QUIET_S`)."""
BASELINE_QUIET_S = 0.3


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def summarize(
    connected: int, results: list[dict[str, Any]], receipts: dict[int, list[float]]
) -> dict[str, Any]:
    """One server at one N: medians over the repeats."""
    us = [r["cpu_us"] / r["n"] for r in results if r["n"]]
    p50s: list[float] = []
    p99s: list[float] = []
    delivered = 0
    for r in results:
        times = receipts.get(int(r["seq"]), [])
        delivered += len(times)
        latencies = [(t - r["t0"]) * 1000 for t in times]
        if latencies:
            p50s.append(percentile(latencies, 0.5) or 0.0)
            p99s.append(percentile(latencies, 0.99) or 0.0)
    return {
        "connected": connected,
        "us_per_recipient": _round(median(us)),
        "last_frame_ms": _round(median([r["last_frame_ms"] for r in results])),
        "emit_ms": _round(median([r["emit_ms"] for r in results])),
        "max_loop_stall_ms": _round(median([r["max_loop_stall_ms"] for r in results])),
        "mixer_late_ticks": (
            None
            if any(r.get("mixer_late_ticks") is None for r in results)
            else sum(int(r["mixer_late_ticks"]) for r in results)
        ),
        "client_p50_ms": _round(median(p50s)),
        "client_p99_ms": _round(median(p99s)),
        "delivered": delivered,
        "expected": connected * len(results),
        "complete": all(r["complete"] for r in results),
        "frame_bytes": results[0]["frame_bytes"] if results else None,
        "emitted_during": _emitted(results),
        "repeats": [
            [round(r["cpu_us"] / max(1, r["n"]), 2), r["last_frame_ms"], r["max_loop_stall_ms"]]
            for r in results
        ],
    }


def _emitted(results: list[dict[str, Any]]) -> dict[str, int]:
    """Emits by event while the broadcasts were measured, all repeats together: anything but
    the one broadcast each would have shared its frames and CPU."""
    total: Counter[str] = Counter()
    for r in results:
        total.update(r.get("emitted", {}))
    return dict(total)


@dataclass
class Plan:
    sizes: list[int]
    repeats: int
    pause_s: float
    workers: int
    connects_in_flight: int
    connect_timeout_s: float
    ping_interval_s: float
    redis_url: str | None
    frame_bytes: int = 0


async def measure_server(
    kind: str, plan: Plan, tmp: Path, started: Started, log: Any
) -> dict[str, Any]:
    """One server: grow its room to each N, broadcast, collect; per N, and its log's problems."""
    mode = "liveroom" if kind.startswith("liveroom") else kind
    extra = ["--ping-interval", str(plan.ping_interval_s)]
    cluster = f"fanout-bench-{secrets.token_hex(4)}"  # keys of our own in that Redis
    if kind == "liveroom_redis":
        assert plan.redis_url is not None
        extra += ["--redis-url", plan.redis_url, "--cluster-name", cluster]

    def spec(index: int, url: str, secret: str | None, room_id: str | None) -> SwarmSpec:
        return SwarmSpec(
            index=index,
            url=url,
            protocol="raw" if mode == "floor" else "socketio",
            secret=secret,
            room_id=room_id,
            listen_auth={"enter": True} if mode == "plain" else {},
            connects_in_flight=plan.connects_in_flight,
            connect_timeout_s=plan.connect_timeout_s,
        )

    out: dict[str, Any] = {"by_n": {}}
    try:
        async with phase(kind, mode, extra, tmp, plan.workers, spec, started) as run_:
            await measure_sizes(kind, run_, plan, out, log)
    finally:
        if kind == "liveroom_redis":
            assert plan.redis_url is not None
            out["redis_keys_removed"] = await remove_keys(plan.redis_url, cluster)
    out["log_problems"], out["log_first"] = run_.server.problems()
    return out


async def remove_keys(redis_url: str, cluster: str) -> int:
    """Delete this run's own keys (``--cluster-name``'s, unique to it) from that Redis: only
    ours, one by one — the Redis may be shared, so it is never flushed."""
    redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    removed = 0
    try:
        async for key in redis.scan_iter(match=f"{cluster}:*", count=500):
            removed += int(await redis.delete(key))
    finally:
        await redis.aclose()
    return removed


async def measure_sizes(kind: str, run_: Phase, plan: Plan, out: dict[str, Any], log: Any) -> None:
    out["frames_source"] = run_.server.frames_source
    log(f"{kind}: at {run_.server.url}, frames counted by {run_.server.frames_source}")
    seqs = itertools.count(1)
    for n in plan.sizes:
        out["by_n"][str(n)] = entry = await measure_size(run_, n, plan, seqs, log)
        log(
            f"{kind}: N={entry['connected']} {entry['us_per_recipient']} µs/recipient, last "
            f"frame {entry['last_frame_ms']} ms, stall {entry['max_loop_stall_ms']} ms, "
            f"delivered {entry['delivered']}/{entry['expected']}"
        )


async def measure_size(
    run_: Phase, n: int, plan: Plan, seqs: Iterator[int], log: Any
) -> dict[str, Any]:
    """Grow the room to ``n`` sockets; once the server is quiet, broadcast ``plan.repeats``
    times; what the server measured and when each socket got each broadcast."""
    server, swarm = run_.server, run_.swarm
    began = time.monotonic()
    grown = await swarm.grow(n, timeout=120 + 0.05 * n)
    held = grown.held
    log(
        f"{run_.kind}: {held}/{n} sockets in the room ({time.monotonic() - began:.1f} s"
        + (f", {grown.failed} failed: {grown.failures[:2]}" if grown.failed else "")
        + ")"
    )
    # No frame for a while (the joins' own messages and counts all sent); the CPU the server
    # spent meanwhile is its idle cost.
    quiet_s = LIVEROOM_QUIET_S if run_.secret is not None else BASELINE_QUIET_S
    quiet = await server.ask("quiet", cmd="quiet", quiet_s=quiet_s, timeout_s=30)
    results = []
    for _ in range(plan.repeats):
        seq = next(seqs)
        if run_.host is not None and run_.room_id is not None:  # liveroom: the host's update
            await server.ask("armed", cmd="arm", seq=seq, n=held)
            title = f"{MARK}{seq}#"
            await run_.host.request("room:update", {"room_id": run_.room_id, "title": title})
        else:
            size = plan.frame_bytes or DEFAULT_FRAME_BYTES
            await server.send(cmd="broadcast", seq=seq, n=held, frame_bytes=size)
        results.append(await server.expect("broadcast", 40 + held / 500))
        await asyncio.sleep(plan.pause_s)
    await asyncio.sleep(0.2)  # the last frames reach the clients (written already)
    receipts, _, alive = await swarm.receipts(timeout=60)
    entry = summarize(held, results, receipts)
    idle = float(quiet["idle_cpu_share"])
    net = [(r["cpu_us"] - idle * r["last_frame_ms"] * 1000) / r["n"] for r in results if r["n"]]
    entry.update(
        us_per_recipient_net=_round(median(net)),
        asked=n,
        failed=grown.failed,
        failures=grown.failures,
        alive=alive,
        quiet_before=quiet["ok"],
        idle_cpu_share=idle,
    )
    return entry


def ratios(servers: dict[str, dict[str, Any]], sizes: Sequence[int]) -> None:
    """``ratio_to_floor`` (µs per recipient) and ``last_frame_ratio_to_floor`` in place."""
    floor = servers.get("floor", {}).get("by_n", {})
    for name, run in servers.items():
        for n in sizes:
            entry = run["by_n"].get(str(n))
            base = floor.get(str(n))
            if entry is None:
                continue
            entry["ratio_to_floor"] = None
            entry["last_frame_ratio_to_floor"] = None
            if base and base["us_per_recipient"] and entry["us_per_recipient"] is not None:
                entry["ratio_to_floor"] = round(
                    entry["us_per_recipient"] / base["us_per_recipient"], 2
                )
            if base and base["last_frame_ms"] and entry["last_frame_ms"] is not None:
                entry["last_frame_ratio_to_floor"] = round(
                    entry["last_frame_ms"] / base["last_frame_ms"], 2
                )
            if name == "floor":
                entry["ratio_to_floor"] = entry["last_frame_ratio_to_floor"] = 1.0


async def run(args: argparse.Namespace, started: Started, log: Any) -> dict[str, Any]:
    sizes = sorted(set(args.sockets))
    workers = args.workers or max(2, min(MAX_WORKERS, math.ceil(sizes[-1] / SOCKETS_PER_WORKER)))
    plan = Plan(
        sizes=sizes,
        repeats=args.repeats,
        pause_s=args.pause,
        workers=workers,
        connects_in_flight=args.connects_in_flight,
        connect_timeout_s=args.connect_timeout,
        ping_interval_s=args.ping_interval,
        redis_url=args.redis_url,
        frame_bytes=args.frame_bytes,
    )
    kinds = list(args.servers)
    if args.redis_url and "liveroom_redis" not in kinds:
        kinds.insert(kinds.index("liveroom") + 1 if "liveroom" in kinds else 0, "liveroom_redis")
    servers: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="liveroom-fanout-") as tmpdir:
        for kind in kinds:
            servers[kind] = await measure_server(kind, plan, Path(tmpdir), started, log)
            if kind.startswith("liveroom") and not plan.frame_bytes:
                sizes_seen = [
                    e["frame_bytes"] for e in servers[kind]["by_n"].values() if e["frame_bytes"]
                ]
                plan.frame_bytes = int(median(sizes_seen) or DEFAULT_FRAME_BYTES)
    ratios(servers, sizes)
    all_delivered = all(
        e["delivered"] == e["expected"] == e["asked"] * plan.repeats and e["complete"]
        for run_ in servers.values()
        for e in run_["by_n"].values()
    )
    return {
        "sockets": sizes,
        "repeats": plan.repeats,
        "frame_bytes": plan.frame_bytes or DEFAULT_FRAME_BYTES,
        "workers": plan.workers,
        "pinned": two_cores(),
        "all_delivered": all_delivered,
        "servers": servers,
    }


def table(out: dict[str, Any]) -> str:
    lines = [
        f"one broadcast to N sockets in one room, median of {out['repeats']}; "
        f"{out['frame_bytes']} B frames; server on core {SERVER_CPU}, clients on core {LOAD_CPU}"
        + ("" if out["pinned"] else " (NOT pinned: fewer than two cores)"),
        f"{'server':15} {'N':>6} {'µs/recip':>9} {'net':>7} {'last frame ms':>13} "
        f"{'stall ms':>9} {'late':>5} {'client p50':>10} {'p99':>8} {'delivered':>13} "
        f"{'×floor':>7}",
    ]
    for name, run_ in out["servers"].items():
        for n in out["sockets"]:
            e = run_["by_n"].get(str(n))
            if e is None:
                continue
            lines.append(
                f"{name:15} {e['connected']:>6} {_fmt(e['us_per_recipient']):>9} "
                f"{_fmt(e['us_per_recipient_net']):>7} {_fmt(e['last_frame_ms']):>13} "
                f"{_fmt(e['max_loop_stall_ms']):>9} {_fmt(e.get('mixer_late_ticks')):>5} "
                f"{_fmt(e['client_p50_ms']):>10} "
                f"{_fmt(e['client_p99_ms']):>8} {e['delivered']:>6}/{e['expected']:<6} "
                f"{_fmt(e.get('ratio_to_floor')):>7}"
            )
    for name in out["servers"]:
        if name == "floor" or "floor" not in out["servers"]:
            continue
        parts = []
        for n in out["sockets"]:
            e = out["servers"][name]["by_n"].get(str(n))
            if e is not None:
                parts.append(
                    f"N={n}: CPU ×{_fmt(e['ratio_to_floor'])}, "
                    f"last frame ×{_fmt(e['last_frame_ratio_to_floor'])}"
                )
        lines.append(f"{name} / floor: " + "; ".join(parts))
    for name, run_ in out["servers"].items():
        if run_["log_problems"]:
            lines.append(f"{name} logged {run_['log_problems']} warnings/errors, first:")
            lines += [f"  {line}" for line in run_["log_first"][:3]]
    if not out["all_delivered"]:
        lines.append("NOT every socket got every broadcast: see delivered/expected")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _sizes(text: str) -> list[int]:
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("give one or more positive counts, comma-separated")
    return sizes


def _servers(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(names) - {*SERVERS, "liveroom_redis"}
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"servers are {', '.join(SERVERS)}: not {unknown}")
    return names


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sockets", type=_sizes, default=[1000, 5000, 10000], help="N,N,...")
    parser.add_argument("--repeats", type=int, default=5, help="broadcasts per server and N")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between broadcasts")
    parser.add_argument("--servers", type=_servers, default=list(SERVERS), help="which, in order")
    parser.add_argument("--redis-url", default=None, help="also liveroom as a node on this Redis")
    parser.add_argument("--workers", type=int, default=0, help="client processes (default: auto)")
    parser.add_argument("--connects-in-flight", type=int, default=8, help="per worker")
    parser.add_argument("--connect-timeout", type=float, default=30.0, help="per socket, s")
    parser.add_argument("--frame-bytes", type=int, default=0, help="baselines' frame (liveroom's)")
    parser.add_argument("--ping-interval", type=float, default=600.0, help="Engine.IO, s")
    parser.add_argument("--timeout", type=float, default=0, help="overall limit, s (default: auto)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.pause < 0:
        parser.error("--repeats must be ≥ 1 and --pause ≥ 0")
    if "liveroom_redis" in args.servers and not args.redis_url:
        parser.error("liveroom_redis needs --redis-url")
    return args


def default_timeout(args: argparse.Namespace) -> float:
    servers = len(args.servers) + (1 if args.redis_url else 0)
    repeats: int = args.repeats
    biggest: int = max(args.sockets)
    pause: float = args.pause
    per_server = 90 + 0.03 * biggest + len(args.sockets) * (repeats * (pause + 3) + 10)
    return 120.0 + servers * per_server


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pin(LOAD_CPU)
    fds = raise_fd_limit()
    if fds < max(args.sockets) + 200:
        sys.stderr.write(
            f"fanout.py: RLIMIT_NOFILE is {fds} (hard): the server cannot hold "
            f"{max(args.sockets)} sockets; raise it (ulimit -Hn) or expect refused connections\n"
        )

    def log(message: str) -> None:
        if not args.json:
            print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    out = drive(
        "fanout.py",
        lambda started: run(args, started, log),
        args.timeout or default_timeout(args),
    )
    if isinstance(out, int):
        return out
    if not args.json:
        print(table(out))
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
