"""A room's HLS from the program mix: what players fetch plays the room's sound, on one
unbroken timeline, and a failing disk costs the HLS, never the mixer.

The packager counts samples, not wall time, so these tests push frames as fast as they like
and wait for the queue to drain.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from liveroom.media import hls
from liveroom.media.hls import LIVE_PLAYLIST, REPLAY_PLAYLIST, HlsPackager
from liveroom.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Pcm
from tests.hearing import band, tones

MakePackager = Callable[..., HlsPackager]


@dataclass
class Listed:
    uri: str
    duration_s: float
    discontinuity: bool


@dataclass
class Playlist:
    lines: list[str]
    tags: dict[str, str] = field(default_factory=dict)
    segments: list[Listed] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return "#EXT-X-ENDLIST" in self.lines

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.segments)


def read_playlist(path: Path) -> Playlist:
    lines = path.read_text().splitlines()
    assert lines[0] == "#EXTM3U"
    playlist = Playlist(lines)
    duration, discontinuity = None, False
    for line in lines[1:]:
        if line.startswith("#EXTINF:"):
            duration = float(line.removeprefix("#EXTINF:").rstrip(","))
        elif line == "#EXT-X-DISCONTINUITY":
            discontinuity = True
        elif line.startswith("#EXT-X-") and ":" in line:
            name, value = line.split(":", 1)
            playlist.tags[name] = value
        elif line and not line.startswith("#"):
            assert duration is not None, f"{line} has no #EXTINF"
            playlist.segments.append(Listed(line, duration, discontinuity))
            duration, discontinuity = None, False
    return playlist


@dataclass
class Decoded:
    pcm: np.ndarray
    first_pts: int
    end_pts: int
    """The last packet's pts plus its duration: where the next segment must start."""


def decode(path: Path) -> Decoded:
    # As a player does: the playlist says it is TS (FFmpeg's guess from the bytes can take a
    # tiny last segment of silence, all ADTS sync words, for raw AAC).
    with av.open(str(path), format="mpegts") as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        pieces, stamps = [], []
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            assert packet.pts is not None
            stamps.append((packet.pts, packet.duration or 0))
            for frame in packet.decode():
                assert (frame.sample_rate, frame.layout.name) == (SAMPLE_RATE, "mono")
                pieces.append(frame.to_ndarray().reshape(-1))
    pcm = np.concatenate(pieces) * 32768
    return Decoded(pcm, stamps[0][0], stamps[-1][0] + stamps[-1][1])


def push_all(packager: HlsPackager, pcm: Pcm) -> None:
    for start in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        packager.push(pcm[start : start + FRAME_SAMPLES])


def on_disk(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.suffix == ".ts")


@pytest.fixture
def packagers() -> Iterator[MakePackager]:
    made: list[HlsPackager] = []

    def make(directory: Path, **options: Any) -> HlsPackager:
        packager = HlsPackager("room-1", directory, **options)
        made.append(packager)
        return packager

    yield make
    for packager in made:
        packager.close()


async def test_the_live_playlist_slides_over_segments_that_carry_the_room(
    tmp_path: Path, packagers: MakePackager
) -> None:
    room = tmp_path / "room-1"
    packager = packagers(room, window=3)
    push_all(packager, tones([(440, 5.0)]))  # from the event loop, as the mixer will
    assert await asyncio.to_thread(packager.drain, 10)

    live = read_playlist(room / LIVE_PLAYLIST)
    assert live.tags["#EXT-X-VERSION"] == "3"
    assert live.tags["#EXT-X-TARGETDURATION"] == "1"
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in live.lines
    assert not live.ended  # the room is still on
    assert [s.uri for s in live.segments] == ["seg-000002.ts", "seg-000003.ts", "seg-000004.ts"]
    assert live.tags["#EXT-X-MEDIA-SEQUENCE"] == "2"
    for listed in live.segments:
        assert 0.9 < listed.duration_s <= 1.0  # whole AAC frames, never over the target
        assert band(decode(room / listed.uri).pcm, 440) > 0.5
    assert packager.stats.segments == 5 and packager.stats.healthy
    assert on_disk(room) == [f"seg-{n:06d}.ts" for n in range(5)]  # recording keeps them all
    assert not [p for p in room.iterdir() if p.name.startswith(".")]  # no temporary left


def test_timestamps_run_on_from_one_segment_to_the_next(
    tmp_path: Path, packagers: MakePackager
) -> None:
    packager = packagers(tmp_path, segment_s=0.5)
    push_all(packager, tones([(440, 3.0)]))
    packager.finish()
    assert packager.drain(10)

    decoded = [decode(tmp_path / name) for name in on_disk(tmp_path)]
    assert len(decoded) == 7
    for before, after in itertools.pairwise(decoded):
        assert after.first_pts == before.end_pts
    assert read_playlist(tmp_path / LIVE_PLAYLIST).tags["#EXT-X-TARGETDURATION"] == "1"


def test_the_replay_lists_the_whole_room_once_it_ends(
    tmp_path: Path, packagers: MakePackager
) -> None:
    packager = packagers(tmp_path, window=2)
    pushed = tones([(440, 5.0)])
    push_all(packager, pushed)
    packager.finish()
    packager.push(pushed[:FRAME_SAMPLES])  # the mixer's last tick, after the end: ignored
    assert packager.drain(10)

    replay = read_playlist(tmp_path / REPLAY_PLAYLIST)
    assert replay.tags["#EXT-X-PLAYLIST-TYPE"] == "VOD"
    assert replay.tags["#EXT-X-MEDIA-SEQUENCE"] == "0"
    assert replay.ended
    assert [s.uri for s in replay.segments] == on_disk(tmp_path)
    assert abs(replay.duration_s - len(pushed) / SAMPLE_RATE) < 0.2
    assert all(s.duration_s <= 1 for s in replay.segments)
    heard = np.concatenate([decode(tmp_path / s.uri).pcm for s in replay.segments])
    assert abs(len(heard) - len(pushed)) < 2 * 1024  # the encoder's priming and last frame
    assert band(heard, 440) > 0.5
    assert read_playlist(tmp_path / LIVE_PLAYLIST).ended  # live players stop polling too


def test_without_recording_only_the_window_stays_on_disk(
    tmp_path: Path, packagers: MakePackager
) -> None:
    packager = packagers(tmp_path, window=2, recording=False)
    push_all(packager, tones([(440, 10.0)]))
    packager.finish()
    assert packager.drain(10)

    live = read_playlist(tmp_path / LIVE_PLAYLIST)
    assert live.ended
    assert [s.uri for s in live.segments] == ["seg-000009.ts", "seg-000010.ts"]
    # The window, and as many again for players still fetching what just left it.
    assert on_disk(tmp_path) == [f"seg-{n:06d}.ts" for n in range(6, 11)]
    assert not (tmp_path / REPLAY_PLAYLIST).exists()


def test_an_unwritable_media_dir_costs_the_hls_never_the_mixer(
    tmp_path: Path, packagers: MakePackager
) -> None:
    blocker = tmp_path / "media"
    blocker.write_text("a file where the media dir should be")
    room = blocker / "room-1"
    packager = packagers(room)
    push_all(packager, tones([(440, 3.0)]))  # no exception: the mixer goes on
    assert packager.drain(10)
    broken = replace(packager.stats)
    assert broken.write_errors >= 2
    assert not broken.healthy
    assert broken.segments == 0

    blocker.unlink()  # the operator fixes the disk
    push_all(packager, tones([(440, 3.0)]))
    assert packager.drain(10)
    assert packager.stats.healthy
    live = read_playlist(room / LIVE_PLAYLIST)
    assert live.tags["#EXT-X-MEDIA-SEQUENCE"] == "0"  # nothing listed was ever lost
    assert not any(s.discontinuity for s in live.segments)
    assert band(decode(room / live.segments[-1].uri).pcm, 440) > 0.5


def test_after_a_write_failure_the_replay_marks_the_hole(
    tmp_path: Path, packagers: MakePackager, caplog: pytest.LogCaptureFixture
) -> None:
    room = tmp_path / "room-1"
    packager = packagers(room)
    push_all(packager, tones([(440, 2.0)]))
    assert packager.drain(10)
    assert on_disk(room) == ["seg-000000.ts", "seg-000001.ts"]

    room.rename(tmp_path / "aside")
    room.write_text("the disk says no")
    with caplog.at_level(logging.WARNING, logger=hls.__name__):
        push_all(packager, tones([(440, 3.0)]))  # three segments lost
        assert packager.drain(10)
    assert packager.stats.write_errors >= 3
    assert len([r for r in caplog.records if "cannot write" in r.message]) == 1  # per episode

    room.unlink()
    (tmp_path / "aside").rename(room)
    push_all(packager, tones([(880, 2.0)]))
    packager.finish()
    assert packager.drain(10)
    assert packager.stats.healthy

    replay = read_playlist(room / REPLAY_PLAYLIST)
    assert [s.uri for s in replay.segments] == [f"seg-{n:06d}.ts" for n in range(5)]
    assert [s.discontinuity for s in replay.segments] == [False, False, True, False, False]
    assert band(decode(room / "seg-000002.ts").pcm, 880) > 0.5  # the room after the hole


def test_a_stalled_disk_drops_frames_that_come_back_as_silence(
    tmp_path: Path, packagers: MakePackager, monkeypatch: pytest.MonkeyPatch
) -> None:
    stalled = threading.Event()
    disk_back = threading.Event()
    write = hls._write_atomically

    def slow_write(path: Path, data: bytes, *, durable: bool = False) -> None:
        if not disk_back.is_set():
            stalled.set()
            disk_back.wait(10)
        write(path, data, durable=durable)

    monkeypatch.setattr(hls, "_write_atomically", slow_write)
    packager = packagers(tmp_path, queue_frames=10)
    pushed = tones([(440, 4.0)])
    for start in range(0, 45 * FRAME_SAMPLES, 5 * FRAME_SAMPLES):  # 0.9 s, all queued
        push_all(packager, pushed[start : start + 5 * FRAME_SAMPLES])
        assert packager.drain(10)
    # The first segment is complete (with the encoder's 1024-sample delay) and written...
    push_all(packager, pushed[45 * FRAME_SAMPLES : 55 * FRAME_SAMPLES])
    assert stalled.wait(10)
    push_all(packager, pushed[55 * FRAME_SAMPLES :])  # ... and the disk hangs: push never does
    dropped = packager.stats.dropped_frames
    assert dropped >= 145 - 10  # all but what the queue holds

    disk_back.set()
    packager.finish()
    assert packager.drain(10)
    replay = read_playlist(tmp_path / REPLAY_PLAYLIST)
    assert abs(replay.duration_s - len(pushed) / SAMPLE_RATE) < 0.2  # the room's length kept
    heard = np.concatenate([decode(tmp_path / s.uri).pcm for s in replay.segments])
    windows = heard[: len(heard) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    quiet = int((np.sqrt(np.mean(windows**2, axis=1)) < 100).sum())
    assert abs(quiet - dropped) <= 4  # each dropped frame became 20 ms of silence


def test_a_room_restarted_on_the_same_directory_numbers_on(
    tmp_path: Path, packagers: MakePackager
) -> None:
    first = packagers(tmp_path)
    push_all(first, tones([(440, 2.0)]))
    assert first.drain(10)
    first.close()  # a quick restart: no finish, the live playlist stays open

    second = packagers(tmp_path)
    push_all(second, tones([(440, 2.0)]))
    assert second.drain(10)
    live = read_playlist(tmp_path / LIVE_PLAYLIST)
    assert [s.uri for s in live.segments] == ["seg-000002.ts", "seg-000003.ts"]
    assert live.segments[0].discontinuity  # a new encoder's timestamps start again
    second.finish()
    assert second.drain(10)
    replay = read_playlist(tmp_path / REPLAY_PLAYLIST)  # the whole room, across the restart
    assert [s.uri for s in replay.segments][:4] == [f"seg-{n:06d}.ts" for n in range(4)]
    assert [s.discontinuity for s in replay.segments][:4] == [False, False, True, False]


def test_a_room_taken_over_numbers_from_the_floor_its_node_set(
    tmp_path: Path, packagers: MakePackager
) -> None:
    """Several nodes with media dirs of their own: the node taking a room over sets a floor past
    anything another node wrote; its own older segments of the room count too."""
    fresh = tmp_path / "fresh"
    hls.number_from(fresh, 2_000_000_000)
    taken = packagers(fresh)
    push_all(taken, tones([(440, 2.0)]))
    assert taken.drain(10)
    live = read_playlist(fresh / LIVE_PLAYLIST)
    assert live.tags["#EXT-X-MEDIA-SEQUENCE"] == "2000000000"
    assert [s.uri for s in live.segments] == ["seg-2000000000.ts", "seg-2000000001.ts"]
    assert live.segments[0].discontinuity  # the other node's timestamps do not run on here

    hls.number_from(fresh, 5)  # a lower floor never takes numbers back
    taken.close()
    again = packagers(fresh)
    push_all(again, tones([(440, 2.0)]))
    assert again.drain(10)
    assert on_disk(fresh)[-2:] == ["seg-2000000002.ts", "seg-2000000003.ts"]


def test_recording_switched_off_and_on_leaves_a_marked_gap_in_the_replay(
    tmp_path: Path, packagers: MakePackager
) -> None:
    packager = packagers(tmp_path)
    push_all(packager, tones([(440, 2.0)]))
    assert packager.drain(10)
    packager.recording = False
    push_all(packager, tones([(440, 3.0)]))
    assert packager.drain(10)
    packager.recording = True
    push_all(packager, tones([(440, 2.0)]))
    packager.finish()
    assert packager.drain(10)
    replay = read_playlist(tmp_path / REPLAY_PLAYLIST)
    numbers = [int(s.uri[4:10]) for s in replay.segments]
    gap = next(n for n in range(1, len(numbers)) if numbers[n] != numbers[n - 1] + 1)
    assert replay.segments[gap].discontinuity  # timestamps jump there: players re-anchor
    assert not any(s.discontinuity for n, s in enumerate(replay.segments) if n != gap)


@pytest.mark.parametrize(
    "options", [{"segment_s": 0.01}, {"window": 0}, {"queue_frames": 0}], ids=str
)
def test_settings_that_cannot_work_are_refused(tmp_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        HlsPackager("room-1", tmp_path, **options)
