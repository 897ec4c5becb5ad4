"""The listeners' fan-out loop alone: CPU per packet per listener, and where it goes.

``python bench/listener_loop.py [--listeners 60] [--ticks 400] [--json]``

``bench/listeners.py`` measures the whole server with listeners in other processes; on loopback
its ``sendto`` also pays for delivering each datagram to a receiving process on the other core
and waking it, which a NIC would not. Here a room's media (``RoomMedia``) answers N
receive-only aiortc peers in this same process (loopback ICE; the peers drop what they receive
without decoding), its mixer clock is stopped once they are connected, and the room's
``ListenerFanout.send`` is called ``--ticks`` times with one 100-byte Opus-sized payload:

- ``us_per_packet``: this thread's CPU time (``time.thread_time``: user + kernel) ÷ packets
  sent — the loop's own cost per listener per packet;
- ``breakdown_us``: the same ticks again under ``cProfile``, as µs per packet for ``sendto``
  (the syscall), SRTP ``protect`` and everything else (profiling inflates Python time; the
  split is what it is for).

No baseline server: the baseline is aiortc's sender pipeline, measured by ``listeners.py``.
Loopback only, bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import time
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.rtp import RtpPacket

from liveroom.clock import SystemClock
from liveroom.media.ice import use_loopback_candidates
from liveroom.media.listeners import Tick
from liveroom.media.mixer import FRAME_SAMPLES
from liveroom.media.room import RoomMedia

PAYLOAD = bytes(100)  # a 20 ms Opus packet of speech at ≈ 40 kb/s
YIELD_EVERY = 20  # ticks between two turns of the loop (the peers read their sockets)


async def _connect(room: RoomMedia, n: int) -> list[RTCPeerConnection]:
    peers = []
    for i in range(n):
        pc = RTCPeerConnection()
        transceiver = pc.addTransceiver("audio", direction="recvonly")

        async def drop(_packet: RtpPacket, _arrival_time_ms: int) -> None:
            return None

        transceiver.receiver._handle_rtp_packet = drop  # type: ignore[method-assign,assignment]
        await pc.setLocalDescription(await pc.createOffer())
        answer, _ = await room.offer(f"l{i}", pc.localDescription.sdp, "offer", False)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        peers.append(pc)
    return peers


async def _ticks(room: RoomMedia, first: int, count: int) -> int:
    sent = room.listeners.sent
    for k in range(first, first + count):
        room.listeners.send(
            Tick(
                payload=PAYLOAD, pts=k * FRAME_SAMPLES, abs_send_time=0, ntp_time=0, audio_level=-30
            )
        )
        if k % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    return room.listeners.sent - sent


async def run(listeners: int, ticks: int) -> dict[str, Any]:
    use_loopback_candidates(True)
    room = RoomMedia("bench", [], lambda _room, _levels: None, SystemClock().now_ms)
    room.start()
    peers = await _connect(room, listeners)
    try:
        async with asyncio.timeout(30):
            # Polled: the fan-out has no event to wait on, and this is set-up, not measured.
            while room.listeners.sent < listeners * 50:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        clock = room._clock  # the mixer's: its ticks would run (and be counted) in the yields
        if clock is not None:
            clock.cancel()
        began = time.thread_time()
        sent = await _ticks(room, 0, ticks)
        cpu_s = time.thread_time() - began
        profile = cProfile.Profile()
        profile.enable()
        profiled = await _ticks(room, ticks, ticks)
        profile.disable()
        return {
            "listeners": listeners,
            "ticks": ticks,
            "packets": sent,
            "us_per_packet": round(cpu_s / max(1, sent) * 1e6, 2),
            "breakdown_us": _breakdown(profile, profiled, cpu_s / max(1, sent) * 1e6),
        }
    finally:
        await room.close()
        for pc in peers:
            await pc.close()


def _breakdown(profile: cProfile.Profile, packets: int, us_per_packet: float) -> dict[str, float]:
    """The two C calls' share as cProfile timed them; the rest is what is left of the
    unprofiled figure (cProfile inflates Python code, not C calls)."""
    stats: Any = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    sendto = protect = 0.0
    for (filename, _line, name), (_cc, _nc, tottime, _cum, _callers) in stats.items():
        if name == "<method 'sendto' of '_socket.socket' objects>":
            sendto += tottime
        elif "pylibsrtp" in filename or "srtp_protect" in name:
            protect += tottime
    per = 1e6 / max(1, packets)
    return {
        "sendto": round(sendto * per, 2),
        "srtp_protect": round(protect * per, 2),
        "other": round(max(0.0, us_per_packet - (sendto + protect) * per), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=60)
    parser.add_argument("--ticks", type=int, default=400)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    result = asyncio.run(asyncio.wait_for(run(args.listeners, args.ticks), args.timeout))
    if not args.json:
        b = result["breakdown_us"]
        print(
            f"{result['listeners']} listeners, {result['packets']} packets: "
            f"{result['us_per_packet']} µs of CPU per packet per listener in the fan-out loop\n"
            f"of which sendto {b['sendto']} µs, SRTP {b['srtp_protect']} µs, "
            f"the rest {b['other']} µs"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
