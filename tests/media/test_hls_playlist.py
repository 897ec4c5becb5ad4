"""The playlists players read: the live window and the replay, from segment records alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveroom.media import hls_playlist
from liveroom.media.hls_playlist import Segment, live_playlist, replay_playlist, target_duration
from tests.test_architecture import IO_LIBRARIES, _imports


def segments(first: int, count: int, duration_s: float = 0.98133) -> list[Segment]:
    return [Segment(n, f"seg-{n:06d}.ts", duration_s) for n in range(first, first + count)]


def test_rendering_playlists_does_no_io() -> None:
    assert not _imports(Path(hls_playlist.__file__)) & IO_LIBRARIES


@pytest.mark.parametrize(
    ("longest_s", "expected"),
    [(0.98133, 1), (1.0, 1), (1.00001, 2), (1.984, 2), (0.02, 1), (6.0, 6)],
)
def test_the_target_duration_is_never_shorter_than_a_segment(
    longest_s: float, expected: int
) -> None:
    assert target_duration(longest_s) == expected


def test_the_live_window_starts_at_its_first_segments_number() -> None:
    text = live_playlist(segments(40, 3), 1)
    assert text == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        "#EXT-X-TARGETDURATION:1\n"
        "#EXT-X-MEDIA-SEQUENCE:40\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        "#EXTINF:0.98133,\nseg-000040.ts\n"
        "#EXTINF:0.98133,\nseg-000041.ts\n"
        "#EXTINF:0.98133,\nseg-000042.ts\n"
    )


def test_an_ended_live_playlist_tells_players_to_stop_polling() -> None:
    text = live_playlist(segments(0, 2), 1, ended=True)
    assert text.endswith("seg-000001.ts\n#EXT-X-ENDLIST\n")
    assert "PLAYLIST-TYPE" not in text


def test_the_replay_is_a_vod_playlist_of_every_segment() -> None:
    text = replay_playlist(segments(0, 4), 1)
    lines = text.splitlines()
    assert lines[:6] == [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        "#EXT-X-TARGETDURATION:1",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    assert [line for line in lines if line.endswith(".ts")] == [f"seg-{n:06d}.ts" for n in range(4)]
    assert lines[-1] == "#EXT-X-ENDLIST"


# A room that lost segments 3–4: segment 5 follows a hole, numbered on from 2 (sequence 3).
AFTER_A_HOLE = [
    Segment(1, "seg-000001.ts", 0.98),
    Segment(2, "seg-000002.ts", 0.98),
    Segment(3, "seg-000003.ts", 0.98, discontinuity=True, discontinuity_sequence=1),
    Segment(4, "seg-000004.ts", 0.98, discontinuity_sequence=1),
]


@pytest.mark.parametrize(
    ("window", "sequence_tag", "discontinuity_tags"),
    [
        (AFTER_A_HOLE, None, 1),  # the tag is listed: nothing to count yet
        (AFTER_A_HOLE[2:], None, 1),  # its segment is first: still listed, still not counted
        (AFTER_A_HOLE[3:], "#EXT-X-DISCONTINUITY-SEQUENCE:1", 0),  # slid out: counted
    ],
)
def test_a_discontinuity_is_listed_until_it_slides_out_then_counted(
    window: list[Segment], sequence_tag: str | None, discontinuity_tags: int
) -> None:
    lines = live_playlist(window, 1).splitlines()
    tags = [line for line in lines if line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE")]
    assert tags == ([sequence_tag] if sequence_tag else [])
    assert lines.count("#EXT-X-DISCONTINUITY") == discontinuity_tags
    if discontinuity_tags:  # the tag sits right before the segment after the hole
        at = lines.index("#EXT-X-DISCONTINUITY")
        assert lines[at + 2] == "seg-000003.ts"


def test_durations_are_written_as_measured() -> None:
    text = replay_playlist([Segment(0, "a.ts", 0.98133), Segment(1, "b.ts", 0.1146666)], 1)
    assert "#EXTINF:0.98133,\na.ts" in text
    assert "#EXTINF:0.11467,\nb.ts" in text


def test_an_empty_live_playlist_is_still_well_formed() -> None:
    assert live_playlist([], 1).splitlines()[3] == "#EXT-X-MEDIA-SEQUENCE:0"
