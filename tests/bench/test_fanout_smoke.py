"""A small run of bench/fanout.py, so the benchmark keeps working (numbers live in bench/):
every server is measured, and every socket got every broadcast."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bench.runner import run_bench
from tests.conftest import private_redis_server

ROOT = Path(__file__).resolve().parents[2]
SOCKETS = 20
REPEATS = 2
KEYS = (
    "us_per_recipient",
    "last_frame_ms",
    "max_loop_stall_ms",
    "client_p50_ms",
    "client_p99_ms",
    "ratio_to_floor",
)


def fanout(*extra: str) -> dict[str, Any]:
    result, _ = run_bench(
        "fanout.py",
        *("--sockets", str(SOCKETS), "--repeats", str(REPEATS), "--pause", "0.6"),
        *("--timeout", "90", "--json", *extra),
        timeout=120,
    )
    return result


def check_every_broadcast_arrived(entry: dict[str, Any]) -> None:
    assert entry["connected"] == SOCKETS, entry
    assert entry["delivered"] == entry["expected"] == SOCKETS * REPEATS, entry
    assert entry["complete"], entry  # the server saw all N frames written, each time


def test_fanout_measures_every_server_and_every_socket_gets_every_broadcast() -> None:
    result = fanout()
    assert result["sockets"] == [SOCKETS]
    assert list(result["servers"]) == ["liveroom", "plain", "floor"]
    assert result["all_delivered"]
    assert result["frame_bytes"] > 100  # the baselines sent liveroom's frame size
    for name, run in result["servers"].items():
        entry = run["by_n"][str(SOCKETS)]
        for key in KEYS:
            assert key in entry, (name, key)
        assert entry["us_per_recipient"] > 0, (name, entry)
        assert entry["last_frame_ms"] > 0, (name, entry)
        check_every_broadcast_arrived(entry)
    assert result["servers"]["floor"]["by_n"][str(SOCKETS)]["ratio_to_floor"] == 1.0


@pytest.fixture
def private_redis() -> Iterator[str]:
    """A ``redis-server`` of this test's own (never ``LIVEROOM_TEST_REDIS_URL``'s shared one)."""
    with private_redis_server() as url:
        yield url


@pytest.mark.redis
def test_fanout_through_redis_reaches_every_socket(private_redis: str) -> None:
    result = fanout("--servers", "liveroom_redis", "--redis-url", private_redis)
    assert list(result["servers"]) == ["liveroom_redis"]
    assert isinstance(result["servers"]["liveroom_redis"]["redis_keys_removed"], int)
    entry = result["servers"]["liveroom_redis"]["by_n"][str(SOCKETS)]
    for key in KEYS:
        assert key in entry
    check_every_broadcast_arrived(entry)
