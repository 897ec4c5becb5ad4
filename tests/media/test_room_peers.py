"""A room's peer connections when their user leaves while an offer is being answered: the
connection and its reader do not outlive it (the fuzzer found a reader left pending)."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from liveroom.clock import SystemClock
from liveroom.errors import Gone
from liveroom.media.room import RoomMedia

CLOCK = SystemClock()


async def _sendrecv_offer() -> str:
    client = RTCPeerConnection()
    client.addTransceiver("audio", direction="sendrecv")
    await client.setLocalDescription(await client.createOffer())
    sdp: str = client.localDescription.sdp
    await client.close()
    return sdp


async def test_a_speaker_leaving_mid_answer_leaves_no_reader_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reached, release = asyncio.Event(), asyncio.Event()
    set_remote = RTCPeerConnection.setRemoteDescription

    async def slow_remote(self: RTCPeerConnection, description: RTCSessionDescription) -> None:
        await set_remote(self, description)
        reached.set()  # read: the user leaves now, before the answer is made
        await release.wait()

    monkeypatch.setattr(RTCPeerConnection, "setRemoteDescription", slow_remote)
    room = RoomMedia("r1", [], lambda _room, _levels: None, CLOCK.now_ms)
    room.start()
    try:
        offer = asyncio.create_task(room.offer("singer", await _sendrecv_offer(), "offer", True))
        await reached.wait()
        peer = room.peers["singer"]
        await room.drop("singer")  # they leave while the offer is being answered
        release.set()
        with pytest.raises(Gone):
            await offer
        assert peer.reader is None  # stopped with its connection, not left pending
        assert "singer" not in room.peers
        assert peer.pc.connectionState == "closed"
    finally:
        release.set()
        await room.close()
