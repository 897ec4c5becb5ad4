"""The listeners' fast path with real aiortc peers on loopback: what a listener receives is a
well-formed RTP stream of the room's program — one SSRC and payload type as negotiated,
consecutive sequence numbers, the 48 kHz clock, MID and audio level — and the server's sender
counts it (RTCP sender reports, ``getStats``)."""

from __future__ import annotations

import asyncio
import itertools
import re
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.rtp import RtpPacket

from liveroom.clock import SystemClock
from liveroom.media.mixer import FRAME_SAMPLES
from liveroom.media.room import RoomMedia
from liveroom.media.room import peer_rtp as room_peer_rtp

CLOCK = SystemClock()
PACKETS = 50  # a second of the program


class CountingListener:
    """A receive-only aiortc peer that keeps every RTP packet it is sent."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.packets: list[RtpPacket] = []
        self.enough = asyncio.Event()

    async def offer(self) -> str:
        transceiver = self.pc.addTransceiver("audio", direction="recvonly")
        receiver: RTCRtpReceiver = transceiver.receiver
        handle = receiver._handle_rtp_packet

        async def keep(packet: RtpPacket, arrival_time_ms: int) -> None:
            self.packets.append(packet)
            if len(self.packets) >= PACKETS:
                self.enough.set()
            await handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = keep  # type: ignore[method-assign]
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def answered(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))


def _answered(sdp: str, pattern: str) -> str:
    found = re.search(pattern, sdp, re.MULTILINE)
    assert found, pattern
    return found.group(1)


async def test_a_listener_receives_the_program_as_one_well_formed_rtp_stream(
    loopback_ice: None,
) -> None:
    room = RoomMedia("r1", [], lambda _room, _levels: None, CLOCK.now_ms)
    room.start()
    listener = CountingListener()
    try:
        answer, _ = await room.offer("fan", await listener.offer(), "offer", False)
        await listener.answered(answer)
        await asyncio.wait_for(listener.enough.wait(), 20)
        stats = await room_peer_rtp(room.peers["fan"].pc)
    finally:
        await room.close()
        await listener.pc.close()

    packets = listener.packets
    ssrc = int(_answered(answer, r"^a=ssrc:(\d+) "))
    opus = int(_answered(answer, r"^a=rtpmap:(\d+) opus/48000"))
    assert {p.ssrc for p in packets} == {ssrc}
    assert {p.payload_type for p in packets} == {opus}
    for before, after in itertools.pairwise(packets):
        sent_between = (after.sequence_number - before.sequence_number) % 65536
        ticks = ((after.timestamp - before.timestamp) % 2**32) // FRAME_SAMPLES
        assert sent_between >= 1  # in order, none twice
        assert (after.timestamp - before.timestamp) % FRAME_SAMPLES == 0
        assert ticks >= sent_between  # a skipped (late) tick is a gap in time, never a rewind
    assert (
        sum(
            (b.sequence_number - a.sequence_number) % 65536 == 1
            for a, b in itertools.pairwise(packets)
        )
        >= len(packets) * 0.9
    )  # loopback: essentially nothing lost
    assert {p.extensions.mid for p in packets} == {"0"}
    assert all(p.extensions.audio_level is not None for p in packets)
    negotiated_abs_send_time = "abs-send-time" in answer  # aiortc offers it for video only
    assert all(
        (p.extensions.abs_send_time is not None) == negotiated_abs_send_time for p in packets
    )

    decoder = av.CodecContext.create("libopus", "r")
    decoded = 0
    for p in packets[:10]:
        for frame in decoder.decode(av.Packet(p.payload)):
            decoded += frame.samples
    assert decoded >= 9 * FRAME_SAMPLES  # real Opus frames of 20 ms

    assert stats.sent >= len(packets)  # the server's sender counted what the fast path sent


async def test_a_listener_who_leaves_is_sent_nothing_more(loopback_ice: None) -> None:
    room = RoomMedia("r1", [], lambda _room, _levels: None, CLOCK.now_ms)
    room.start()
    listeners = {name: CountingListener() for name in ("stays", "goes")}
    try:
        for name, listener in listeners.items():
            answer, _ = await room.offer(name, await listener.offer(), "offer", False)
            await listener.answered(answer)
        await asyncio.wait_for(
            asyncio.gather(*(listener.enough.wait() for listener in listeners.values())), 20
        )
        assert len(room.listeners) == 2
        await room.drop("goes")
        assert len(room.listeners) == 1
        received: dict[str, Any] = {n: len(lst.packets) for n, lst in listeners.items()}
        await asyncio.sleep(0.5)
        assert len(listeners["goes"].packets) <= received["goes"] + 2  # in flight at most
        assert len(listeners["stays"].packets) > received["stays"] + 10
    finally:
        await room.close()
        for listener in listeners.values():
            await listener.pc.close()
