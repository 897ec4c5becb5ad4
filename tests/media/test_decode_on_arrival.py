"""A speaker's packets go to the decoder as they arrive: late ones dropped, a restarted stream
followed (never mistaken for a late one forever)."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from liveroom.media.wire import MAX_BEHIND, DecodeOnArrival


def _packet(seq: int, ssrc: int = 1) -> RtpPacket:
    packet = RtpPacket(payload_type=111, sequence_number=seq % 65536, timestamp=seq * 960)
    packet.ssrc = ssrc
    packet._data = bytes([seq % 256])  # type: ignore[attr-defined]  # what the receiver sets
    return packet


def _decoded(buffer: DecodeOnArrival, *packets: RtpPacket) -> list[int]:
    out = []
    for packet in packets:
        _, frame = buffer.add(packet)
        if frame is not None:
            out.append(frame.timestamp // 960)
    return out


def test_each_packet_is_decoded_at_once_and_a_late_or_repeated_one_is_dropped() -> None:
    buffer = DecodeOnArrival()
    got = _decoded(buffer, _packet(10), _packet(11), _packet(13), _packet(12), _packet(13))
    assert got == [10, 11, 13]  # 12 came after 13: its moment had passed; 13 again: a repeat
    assert _decoded(buffer, _packet(14)) == [14]


def test_sequence_numbers_wrap() -> None:
    buffer = DecodeOnArrival()
    assert _decoded(buffer, _packet(65534), _packet(65535), _packet(65536), _packet(65537)) == [
        65534,
        65535,
        65536,
        65537,
    ]


def test_a_restarted_stream_is_followed_whatever_its_numbers() -> None:
    buffer = DecodeOnArrival()
    _decoded(buffer, _packet(5000), _packet(5001))
    # Far behind: not a late packet but a sender that started again.
    assert _decoded(buffer, _packet(5001 - MAX_BEHIND - 10), _packet(5001 - MAX_BEHIND - 9)) == [
        5001 - MAX_BEHIND - 10,
        5001 - MAX_BEHIND - 9,
    ]
    # Another SSRC, just behind: a new stream too.
    assert _decoded(buffer, _packet(4890, ssrc=2), _packet(4891, ssrc=2)) == [4890, 4891]
