"""Encode once, send to many: a feed of encoded packets and the tracks that read it.

The mixer publishes one packet per tick to a :class:`PacketFeed`. Every listener's WebRTC
sender reads its own :class:`FeedTrack`, and every track hands out that same ``av.Packet``;
aiortc's ``RTCRtpSender`` packetizes a packet it is given without encoding it. Waiting is one
shared future per tick, not a queue per listener: a listener that falls behind skips to the
newest packet rather than buffering (live audio has no use for old packets), so memory does not
grow with slow listeners.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

if TYPE_CHECKING:
    from liveroom.media.opus import EncodedPacket


class PacketFeed:
    """The newest packet of one stream (the program mix, or one speaker's mix-minus)."""

    def __init__(self) -> None:
        self._seq = 0
        self._packet: EncodedPacket | None = None
        self._next: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closed = False

    def publish(self, packet: EncodedPacket) -> None:
        self._seq += 1
        self._packet = packet
        waiting, self._next = self._next, asyncio.get_running_loop().create_future()
        if not waiting.done():
            waiting.set_result(None)

    def close(self) -> None:
        self._closed = True
        if not self._next.done():
            self._next.set_result(None)

    async def after(self, seq: int) -> tuple[int, EncodedPacket]:
        """The newest packet once it is newer than ``seq``."""
        while self._seq <= seq or self._packet is None:
            if self._closed:
                raise MediaStreamError
            await asyncio.shield(self._next)
        if self._closed:
            raise MediaStreamError
        return self._seq, self._packet

    @property
    def closed(self) -> bool:
        return self._closed


class FeedTrack(MediaStreamTrack):
    """An audio track whose frames are the feed's encoded packets, for one sender."""

    kind = "audio"

    def __init__(self, feed: PacketFeed) -> None:
        super().__init__()
        self._feed = feed
        self._seen = 0
        self.skipped = 0

    async def recv(self) -> EncodedPacket:
        if self.readyState != "live":
            raise MediaStreamError
        seq, packet = await self._feed.after(self._seen)
        self.skipped += max(0, seq - self._seen - 1)
        self._seen = seq
        return packet
