"""What one room's events cost across nodes: the numbers ``docs/scaling.md`` rests on.

``python bench/cluster_fanout.py [--sockets 500] [--seconds 10] [--json]``

A private ``redis-server`` and two ``liveroom serve`` processes on loopback. A host on one node
runs the room; ``--sockets`` listeners join from the *other* node (the edge), so every event
they get crossed Redis. For ``--seconds`` the host taps reactions (the room sends them twice a
second) and the audience comes and goes a little (counts, views). Measured:

- events delivered to the edge's sockets, and the edge's CPU per delivered event (µs): what a
  signaling node spends per listener per event, the figure that sizes how many nodes a room needs;
- the room's node CPU per event it sent, and Redis ``PUBLISH`` calls per second (one per room
  broadcast, one per personal message);
- RSS of the edge per socket.

Prints a table, then one JSON line (``--json``: only that). Loopback only; bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from liveroom.auth import Grants, Identity, TokenService
from liveroom.client import LiveroomClient
from liveroom.clock import SystemClock
from liveroom.cluster.model import Keys, parse_holder
from liveroom.db.migrate import upgrade
from liveroom.db.session import create_engine
from tests.conftest import TEST_SECRET, free_port
from tests.e2e.server_process import ServerProcess

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def publishes(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_publish", {}).get("calls", 0))


def token(tokens: TokenService, user_id: str, host: bool = False) -> str:
    return tokens.issue(Identity(user_id, user_id, grants=Grants(host=host)), 3600)


@contextlib.asynccontextmanager
async def private_redis() -> AsyncIterator[str]:
    """A ``redis-server`` of our own on a free loopback port, stopped after."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        shutil.which("redis-server") or "redis-server",
        *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        await proc.wait()


@contextlib.asynccontextmanager
async def two_nodes(tmp: Path, redis_url: str) -> AsyncIterator[dict[str, ServerProcess]]:
    database = f"sqlite+aiosqlite:///{tmp / 'shared.db'}"
    engine = create_engine(database)
    await upgrade(engine)
    await engine.dispose()
    nodes = {
        node_id: ServerProcess(
            tmp / node_id,
            database,
            tmp / f"{node_id}.log",
            extra=("--redis-url", redis_url, "--node-id", node_id, "--log-level", "warning"),
        )
        for node_id in ("a", "b")
    }
    try:
        await asyncio.gather(*(node.start() for node in nodes.values()))
        yield nodes
    finally:
        for node in nodes.values():
            with contextlib.suppress(Exception):
                await node.stop_with(signal.SIGTERM)


async def crowd(url: str, tokens: TokenService, room_id: str, n: int) -> list[LiveroomClient]:
    clients: list[LiveroomClient] = []
    for start in range(0, n, 50):
        batch = await asyncio.gather(
            *(
                LiveroomClient.connect(url, token(tokens, f"fan{i}"))
                for i in range(start, min(start + 50, n))
            )
        )
        clients += batch
        await asyncio.gather(*(c.request("room:join", {"room_id": room_id}) for c in batch))
    return clients


async def steady(
    host: LiveroomClient, fans: list[LiveroomClient], room_id: str, seconds: float
) -> tuple[float, int]:
    """Reactions from the host, a little coming and going: how long it ran, how many joins."""
    started = time.monotonic()
    churners = fans[: max(1, len(fans) // 50)]
    joins = 0
    while time.monotonic() - started < seconds:
        await host.call("react", {"room_id": room_id, "emoji": "🔥"})
        for client in churners:
            await client.call("room:leave", {"room_id": room_id})
            await client.call("room:join", {"room_id": room_id})
            joins += 1
        await asyncio.sleep(0.1)
    return time.monotonic() - started, joins


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tokens = TokenService(TEST_SECRET, SystemClock(), 3600)
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp_dir:
        async with private_redis() as redis_url, two_nodes(Path(tmp_dir), redis_url) as nodes:
            redis = Redis.from_url(redis_url)
            host = await LiveroomClient.connect(nodes["a"].url, token(tokens, "artist", True))
            fans: list[LiveroomClient] = []
            try:
                room_id = (await host.request("room:create", {"title": "Bench"}))["room"]["id"]
                await host.request("room:join", {"room_id": room_id})
                holder = parse_holder(await redis.get(Keys("liveroom").lease(room_id)))
                assert holder is not None
                edge = nodes["b" if holder[0] == "a" else "a"]
                owner = nodes[holder[0]]
                assert edge.proc is not None
                assert owner.proc is not None
                rss_before = rss_mb(edge.proc.pid)
                fans = await crowd(edge.url, tokens, room_id, args.sockets)
                await asyncio.sleep(2)  # the joins' views and counts sent
                rss_after = rss_mb(edge.proc.pid)
                for fan in fans:
                    fan.received = 0
                edge_cpu, owner_cpu = cpu_s(edge.proc.pid), cpu_s(owner.proc.pid)
                published = await publishes(redis)
                elapsed, joins = await steady(host, fans, room_id, args.seconds)
                await asyncio.sleep(1.0)  # the last broadcasts arrive
                edge_cpu = cpu_s(edge.proc.pid) - edge_cpu
                owner_cpu = cpu_s(owner.proc.pid) - owner_cpu
                published = await publishes(redis) - published
            finally:
                await asyncio.gather(host.close(), *(f.close() for f in fans))
                await redis.aclose()
    delivered = sum(fan.received for fan in fans)
    return {
        "sockets": args.sockets,
        "seconds": round(elapsed, 1),
        "delivered": delivered,
        "delivered_per_s": round(delivered / elapsed),
        "edge_cpu_share": round(edge_cpu / elapsed, 3),
        "edge_us_per_delivered": round(edge_cpu / max(delivered, 1) * 1e6, 1),
        "owner_cpu_share": round(owner_cpu / elapsed, 3),
        "joins_per_s": round(joins / elapsed, 1),
        "redis_publish_per_s": round(published / elapsed, 1),
        "edge_kb_per_socket": round((rss_after - rss_before) * 1024 / args.sockets, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    if not args.json:
        for key, value in result.items():
            print(f"{key:28} {value}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
