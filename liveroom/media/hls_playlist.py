"""HLS playlists as text, from the segments a room has written: pure, no I/O, no clock.

Two playlists come from the same segment records. The **live** one lists a sliding window of
the newest segments and is rewritten after every segment; players poll it. The **replay** (VOD)
one lists every segment once the room has ended. Both are RFC 8216 media playlists, version 3
(decimal ``#EXTINF`` durations), which hls.js and Safari's native player both read.

Where segments were lost (the disk refused them), timestamps jump: the segment after the hole
carries ``#EXT-X-DISCONTINUITY`` so players re-anchor rather than stall on a gap. When such a
tag slides out of the live window, ``#EXT-X-DISCONTINUITY-SEQUENCE`` counts it, as the RFC
requires, so a player joining later numbers the discontinuities the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

VERSION = 3


@dataclass(frozen=True, slots=True)
class Segment:
    """One written segment, as the playlists list it."""

    sequence: int
    """Its media sequence number: consecutive over the segments actually written."""
    uri: str
    """Relative to the playlist (the same directory)."""
    duration_s: float
    """Its real duration: whole AAC frames, so usually a little under the target."""
    discontinuity: bool = False
    """Segments before it were lost, so its timestamps do not follow on from the previous one."""
    discontinuity_sequence: int = 0
    """How many discontinuities the room has had up to and including this segment."""


def target_duration(longest_s: float) -> int:
    """``#EXT-X-TARGETDURATION``: whole seconds, never less than a segment lasts (the ceiling,
    stricter than the RFC's rounding, so no player ever finds a segment longer than promised)."""
    whole = int(longest_s)
    return max(1, whole if whole >= longest_s else whole + 1)


def live_playlist(segments: Sequence[Segment], target_s: int, *, ended: bool = False) -> str:
    """The live playlist listing ``segments`` (the window, oldest first). ``ended``: the room
    is over, so players stop polling once they reach the end."""
    return _render(segments, target_s, vod=False, ended=ended)


def replay_playlist(segments: Sequence[Segment], target_s: int) -> str:
    """The replay: every segment of the room, a playlist that never changes."""
    return _render(segments, target_s, vod=True, ended=True)


def _render(segments: Sequence[Segment], target_s: int, *, vod: bool, ended: bool) -> str:
    first = segments[0] if segments else None
    media_sequence = first.sequence if first else 0
    # The tag counts discontinuities *before* the first listed segment; the first segment's
    # own discontinuity, if it has one, is still listed as a tag below.
    discontinuities = first.discontinuity_sequence - int(first.discontinuity) if first else 0
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{VERSION}",
        f"#EXT-X-TARGETDURATION:{target_s}",
        f"#EXT-X-MEDIA-SEQUENCE:{media_sequence}",
    ]
    if discontinuities:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuities}")
    if vod:
        lines.append("#EXT-X-PLAYLIST-TYPE:VOD")
    lines.append("#EXT-X-INDEPENDENT-SEGMENTS")  # every AAC frame decodes on its own
    for segment in segments:
        if segment.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f"#EXTINF:{segment.duration_s:.5f},")
        lines.append(segment.uri)
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
