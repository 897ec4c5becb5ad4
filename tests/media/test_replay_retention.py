"""Replays are kept for their retention, then deleted by the hourly sweep (a fake clock: no
waiting 30 days); a live room's HLS, unrelated files and fresh replays stay."""

from __future__ import annotations

import os
from pathlib import Path

from liveroom.media.hls_api import ReplayRetention
from tests.fakes import FakeClock

DAY_S = 86_400


def room(hls: Path, name: str, files: dict[str, float], now_s: float) -> Path:
    """A room's HLS directory whose files were last written ``age`` days before ``now_s``."""
    directory = hls / name
    directory.mkdir(parents=True)
    for file, age_days in files.items():
        path = directory / file
        path.write_text("#EXTM3U\n")
        written = now_s - age_days * DAY_S
        os.utime(path, (written, written))
    return directory


async def test_the_sweep_deletes_replays_past_their_retention(tmp_path: Path) -> None:
    clock = FakeClock()
    now_s = clock.now_ms() / 1000
    hls = tmp_path / "hls"
    expired = room(hls, "0000000000000001", {"replay.m3u8": 31, "seg-000000.ts": 31}, now_s)
    kept = room(hls, "0000000000000002", {"replay.m3u8": 29, "seg-000000.ts": 29}, now_s)
    live = room(hls, "0000000000000003", {"live.m3u8": 0}, now_s)
    unrecorded = room(hls, "0000000000000004", {"live.m3u8": 0.05}, now_s)  # ended 72 min ago
    other = room(hls, "not-a-room", {"notes.txt": 400}, now_s)

    retention = ReplayRetention(hls, 30 * DAY_S, clock)
    await retention.sweep()
    assert not expired.exists() and not unrecorded.exists()
    assert kept.exists() and live.exists() and other.exists()

    await clock.advance(2 * DAY_S)  # two days on, the 29-day-old replay has passed 30 days
    await retention.sweep()
    assert not kept.exists() and other.exists()


async def test_a_missing_media_dir_is_nothing_to_sweep(tmp_path: Path) -> None:
    await ReplayRetention(tmp_path / "absent", 30 * DAY_S, FakeClock()).sweep()
    assert not (tmp_path / "absent").exists()
