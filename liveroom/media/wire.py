"""The one place the listeners' fast path reaches below aiortc's public API.

aiortc sets a connection up — ICE (aioice), DTLS, the SRTP keys, the negotiated codec, header
extension ids and SSRC — and this module reads what it set up, to send RTP for many listeners
from one loop (:mod:`liveroom.media.listeners`) instead of one aiortc sender task per listener:

- the negotiated send parameters of a transceiver (what ``RTCPeerConnection`` hands its sender),
- the DTLS transport's SRTP session (``_tx_srtp``, a pylibsrtp ``Session``),
- the ICE connection's nominated candidate pair (aioice's ``_nominated``), to ``sendto`` on it,
- the sender's RTCP sender-report counters, kept true for what the fast path sent,
- and, on the receiving side, a speaker's jitter buffer (decode each packet as it arrives).

aiortc and aioice are pinned to the minor versions this was written against (pyproject.toml);
``tests/media/test_wire.py`` fails loudly if one of these names moves.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from aioice.ice import StunProtocol
from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from aiortc.utils import uint16_add

RTP_COMPONENT = 1
MAX_RELAYED_IN_FLIGHT = 8
"""Packets on their way through a TURN relay per listener; past it, the newest is dropped."""
MAX_BEHIND = 100
"""Sequence numbers a speaker's packet may be behind the newest decoded and still be late, not a
new stream (aiortc's own misorder bound; 2 s of 20 ms packets)."""
_SEQ_TS_SSRC = struct.Struct("!HII")


def negotiated(
    transceiver: RTCRtpTransceiver, mid: str
) -> tuple[RTCRtpCodecParameters, RTCRtpParameters]:
    """The codec and parameters the connection's sender sends with (set by negotiation)."""
    codecs = list(transceiver._codecs)
    parameters = RTCRtpParameters(
        codecs=codecs, headerExtensions=list(transceiver._headerExtensions), muxId=mid
    )
    return codecs[0], parameters


def rtp_template(
    parameters: RTCRtpParameters,
    payload_type: int,
    payload: bytes,
    abs_send_time: int,
    audio_level: int | None,
) -> bytearray:
    """One RTP packet as a listener's sender would build it, with sequence number, timestamp and
    SSRC left at zero for :func:`stamp`."""
    ids = HeaderExtensionsMap()
    ids.configure(parameters)
    packet = RtpPacket(payload_type=payload_type, marker=1, payload=payload)
    packet.extensions.abs_send_time = abs_send_time
    packet.extensions.mid = parameters.muxId
    if audio_level is not None:
        packet.extensions.audio_level = (False, -audio_level)
    return bytearray(packet.serialize(ids))


def stamp(template: bytearray, sequence_number: int, timestamp: int, ssrc: int) -> bytes:
    _SEQ_TS_SSRC.pack_into(template, 2, sequence_number, timestamp, ssrc)
    return bytes(template)


class Route:
    """How one listener's packets leave: protected by its SRTP session, sent on its ICE pair."""

    __slots__ = ("_dtls", "_relayed")

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._relayed: set[asyncio.Task[None]] = set()

    @property
    def ready(self) -> bool:
        return self._dtls._state is DtlsState.CONNECTED and self._pair() is not None

    def send(self, packet: bytes) -> int:
        """Protect and send one RTP packet; the bytes sent (0: not connected, not sent)."""
        dtls = self._dtls
        if dtls._state is not DtlsState.CONNECTED:
            return 0
        pair = self._pair()
        if pair is None:
            return 0
        protocol = pair.protocol
        if type(protocol) is StunProtocol:  # host or server-reflexive: a plain UDP socket
            transport = protocol.transport
            if transport is None or transport.is_closing():
                return 0
            protected: bytes = dtls._tx_srtp.protect(packet)
            transport.sendto(protected, pair.remote_addr)
            return len(protected)
        if len(self._relayed) >= MAX_RELAYED_IN_FLIGHT:
            return 0
        protected = dtls._tx_srtp.protect(packet)  # through TURN: it may bind a channel first
        task = asyncio.get_running_loop().create_task(
            protocol.send_data(protected, pair.remote_addr)
        )
        self._relayed.add(task)
        task.add_done_callback(_relayed_done(self._relayed))
        return len(protected)

    def close(self) -> None:
        """The listener is gone: relayed sends still waiting (a TURN channel being bound) stop."""
        for task in self._relayed:
            task.cancel()

    def _pair(self) -> Any:
        return self._dtls.transport._connection._nominated.get(RTP_COMPONENT)


def _relayed_done(tasks: set[asyncio.Task[None]]) -> Any:
    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # a relay send that failed is a lost packet, like UDP's

    return done


def count_sent(sender: RTCRtpSender, *, ntp_time: int, rtp_timestamp: int, octets: int) -> None:
    """Tell the sender about a packet the fast path sent for it (``octets``: payload bytes, as
    aiortc counts): its RTCP sender reports and ``getStats`` then count it."""
    sender._RTCRtpSender__ntp_timestamp = ntp_time  # type: ignore[attr-defined]
    sender._RTCRtpSender__rtp_timestamp = rtp_timestamp  # type: ignore[attr-defined]
    sender._RTCRtpSender__octet_count += octets  # type: ignore[attr-defined]
    sender._RTCRtpSender__packet_count += 1  # type: ignore[attr-defined]


class DecodeOnArrival(JitterBuffer):
    """A speaker's packets to the decoder as they arrive. aiortc's audio jitter buffer waits for
    later packets before it lets a frame go (four by default: 80 ms; never fewer than one: 20 ms);
    an Opus packet is a whole frame, and the jitter the buffer would absorb is absorbed after
    decoding, by the mixer's :class:`~liveroom.media.inbound.SpeakerBuffer`. A packet up to
    :data:`MAX_BEHIND` behind one already decoded (late, or a duplicate) is dropped: its moment
    has passed, and Opus conceals the gap. Farther behind, or from another SSRC, it is a new
    stream (the sender restarted): it is taken, and followed from there."""

    def __init__(self) -> None:
        super().__init__(capacity=16)
        self._next: int | None = None
        self._ssrc: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        if self._next is not None and packet.ssrc == self._ssrc:
            behind = uint16_add(self._next, -packet.sequence_number)
            if 0 < behind <= MAX_BEHIND:
                return False, None
        self._ssrc = packet.ssrc
        self._next = uint16_add(packet.sequence_number, 1)
        data: bytes = packet._data  # type: ignore[attr-defined]  # set by the receiver
        return False, JitterFrame(data=data, timestamp=packet.timestamp)


def decode_on_arrival(receiver: RTCRtpReceiver) -> None:
    """Before the receiver's first packet: :class:`DecodeOnArrival` as its jitter buffer."""
    receiver._RTCRtpReceiver__jitter_buffer = DecodeOnArrival()  # type: ignore[attr-defined]
