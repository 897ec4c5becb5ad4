"""The stateful fuzzer (``tests/fuzzing.py``): several real clients, random events, garbage
payloads and dropped connections against a real server, its invariants checked after every step.

CI runs a few thousand steps, derandomized; ``bench/fuzz.py`` runs ≥ 100,000. The defects the
fuzzer found and that are not fixed yet are reproduced here, marked ``xfail(strict=True)``: when
one is fixed its test passes, fails the suite, and the narrowing in ``KNOWN_DEFECTS`` goes too.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from aiortc import RTCPeerConnection

from liveroom.app import ENGINE, REGISTRY, ROOMS, RunningServer, create_app
from liveroom.config import Config
from tests.conftest import IN_CI, Connect
from tests.fuzzing import SPECS, FuzzOptions, FuzzStats, run_fuzz

EXAMPLES = 30
STEPS_PER_EXAMPLE = 100


def test_fuzzing_real_clients_against_a_real_server_keeps_every_invariant() -> None:
    stats = FuzzStats()
    started = time.monotonic()
    run_fuzz(
        FuzzOptions(),
        stats,
        examples=EXAMPLES,
        steps_per_example=STEPS_PER_EXAMPLE,
        derandomize=IN_CI,
    )
    elapsed = time.monotonic() - started
    assert stats.steps >= 2000, f"only {stats.steps} steps in {elapsed:.0f} s"
    # Every event of the protocol was sent and answered, and the fuzzer got deep enough into
    # rooms for the stage to fill up.
    assert set(SPECS) <= stats.answered_events()
    assert {"room:create", "room:join", "stage:request", "stage:approve", "stage:invite"} <= (
        stats.ok_events()
    )
    assert any(code == "full" for (_, code) in stats.acks)


async def test_the_fuzzer_sends_every_event_the_server_answers(config: Config) -> None:
    app = create_app(config)
    try:
        missing = set(app[REGISTRY].handlers) - set(SPECS)
    finally:
        await app[ENGINE].dispose()
    assert not missing, f"add these events to tests/fuzzing.py SPECS: {sorted(missing)}"


async def test_a_schedule_past_any_database_integer_is_invalid(connect: Connect) -> None:
    """Found by the fuzzer: 2**63 used to reach the database driver and answer `internal`."""
    host = await connect("artist", host=True)
    ack = await host.call("room:create", {"title": "Later", "scheduled_for": 2**63})
    assert ack["error"]["code"] == "invalid"


async def test_an_offer_racing_its_senders_leave_is_gone_not_internal(connect: Connect) -> None:
    """Found by the fuzzer: the closed connection's error used to answer `internal`."""
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    host = await connect("artist", host=True)
    fan = await connect("fan")
    room_id = (await host.request("room:create", {"title": "Live"}))["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    codes = set()
    for _ in range(3):
        await fan.request("room:join", {"room_id": room_id})
        offer, _left = await asyncio.gather(
            fan.call("rtc:offer", {"room_id": room_id, "sdp": sdp, "type": "offer"}),
            fan.request("room:leave", {"room_id": room_id}),
        )
        codes.add("ok" if offer["ok"] else offer["error"]["code"])
    assert codes <= {"ok", "gone"}


async def test_a_server_ban_racing_a_rooms_end_logs_no_error(
    server: RunningServer, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    rooms = server.app[ROOMS]
    admin = await connect("boss", admin=True)
    host, other_host = await connect("artist", host=True), await connect("dj", host=True)
    fan = await connect("fan")
    first = (await host.request("room:create", {"title": "First"}))["room"]["id"]
    second = (await other_host.request("room:create", {"title": "Second"}))["room"]["id"]
    for client, room_id in ((host, first), (other_host, second), (fan, first), (fan, second)):
        await client.request("room:join", {"room_id": room_id})
    await fan.request("stage:request", {"room_id": second})  # holds a place in `second`
    caplog.set_level(logging.ERROR, logger="liveroom")
    async with rooms._lock(first):  # the ban waits in the first room while the second ends
        ban = asyncio.create_task(
            admin.call("room:remove", {"room_id": first, "user_id": "fan", "everywhere": True})
        )
        await asyncio.sleep(0.05)
        await other_host.request("room:end", {"room_id": second})
    assert (await ban)["ok"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
