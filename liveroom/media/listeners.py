"""The program mix sent to every listener from one loop: per listener only what must differ.

aiortc gives each sender a task that wakes for every packet, builds an ``RtpPacket``, serializes
it, protects it and awaits aioice's send: ≈ 160 µs of a core per packet per listener. Here the
room's mixer tick hands the one encoded packet to :meth:`ListenerFanout.send`, which builds the
RTP packet once per negotiated shape (payload type, header extension ids, MID) and then, per
listener, stamps its sequence number, timestamp and SSRC into a copy, SRTP-protects it with the
listener's own key and ``sendto``-s it on the listener's ICE pair. aiortc still sets every
connection up (ICE, DTLS, keys, negotiation) and answers RTCP; each listener's sender holds a
track that never yields, so its task sleeps.

What a listener receives is what aiortc's sender would have sent: a random initial sequence
number and timestamp origin, the RTP clock following the mixer's ticks (a lost tick is a gap in
time, concealed by the receiver), abs-send-time, MID and — new — the mix's audio level
(RFC 6464), computed once per tick.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiortc import RTCRtpSender, RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpParameters
from aiortc.utils import random16, random32, uint16_add, uint32_add

from liveroom.media import wire

logger = logging.getLogger(__name__)


class SilentTrack(MediaStreamTrack):
    """What a fast-path listener's aiortc sender reads: nothing, until it is stopped."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._stopped = asyncio.get_running_loop().create_future()

    async def recv(self) -> None:  # type: ignore[override]
        await asyncio.shield(self._stopped)
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        if not self._stopped.done():
            self._stopped.set_result(None)


@dataclass(slots=True)
class Listener:
    transceiver: RTCRtpTransceiver
    sender: RTCRtpSender
    route: wire.Route
    sequence_number: int = field(default_factory=random16)
    timestamp_origin: int = field(default_factory=random32)
    parameters: RTCRtpParameters | None = None
    """What negotiation settled, once the connection is up (``None`` until then)."""
    payload_type: int = 0
    shape: tuple[object, ...] = ()
    """The parameters that make one listener's packet differ from another's beyond seq, ts
    and SSRC: listeners of one shape share the tick's RTP template."""


@dataclass(slots=True)
class Tick:
    """What every listener's packet of this tick shares."""

    payload: bytes
    pts: int
    abs_send_time: int
    ntp_time: int
    audio_level: int | None


class ListenerFanout:
    """The listeners of one room's program mix."""

    def __init__(self) -> None:
        self._listeners: dict[str, Listener] = {}
        self.sent = 0
        """Packets sent to listeners so far."""

    def __len__(self) -> int:
        return len(self._listeners)

    def add(self, user_id: str, transceiver: RTCRtpTransceiver) -> None:
        """``user_id``'s connection receives the program from the tick its DTLS is up."""
        sender = transceiver.sender
        sender.replaceTrack(SilentTrack())
        self._listeners[user_id] = Listener(transceiver, sender, wire.Route(sender.transport))

    def remove(self, user_id: str) -> None:
        listener = self._listeners.pop(user_id, None)
        if listener is not None:
            listener.route.close()

    def send(self, tick: Tick) -> int:
        """The tick's packet to every listener whose connection is up; how many were sent."""
        sent = 0
        templates: dict[tuple[object, ...], bytearray] = {}
        for listener in self._listeners.values():
            if listener.parameters is None and not _start(listener):
                continue
            template = templates.get(listener.shape)
            if template is None:
                assert listener.parameters is not None
                template = templates[listener.shape] = wire.rtp_template(
                    listener.parameters,
                    listener.payload_type,
                    tick.payload,
                    tick.abs_send_time,
                    tick.audio_level,
                )
            timestamp = uint32_add(listener.timestamp_origin, tick.pts)
            packet = wire.stamp(
                template, listener.sequence_number, timestamp, listener.sender._ssrc
            )
            if listener.route.send(packet):
                listener.sequence_number = uint16_add(listener.sequence_number, 1)
                sent += 1
                wire.count_sent(
                    listener.sender,
                    ntp_time=tick.ntp_time,
                    rtp_timestamp=timestamp,
                    octets=len(tick.payload),
                )
        self.sent += sent
        return sent


def _start(listener: Listener) -> bool:
    """Once its connection is up, what the listener's packets look like (negotiated)."""
    mid = listener.transceiver.mid
    if not listener.route.ready or mid is None:
        return False
    codec, parameters = wire.negotiated(listener.transceiver, mid)
    listener.parameters = parameters
    listener.payload_type = codec.payloadType or 0
    listener.shape = (
        codec.payloadType,
        parameters.muxId,
        tuple((e.uri, e.id) for e in parameters.headerExtensions),
    )
    return True
