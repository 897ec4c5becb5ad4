"""The deck decodes ahead of the mixer, within its bound, from where it is cued."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np

from liveroom.media.deck import Deck
from liveroom.media.mixer import SAMPLE_RATE
from tests.hearing import band


def two_tones(path: Path, rate: int = 44_100) -> Path:
    """2 s of 440 Hz then 2 s of 880 Hz, stereo, at another rate than the mixer's."""
    t = np.arange(2 * rate) / rate
    mono = np.concatenate([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 880 * t)]) * 12_000
    stereo = np.repeat(mono.astype("<i2")[:, None], 2, axis=1)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(stereo.tobytes())
    return path


def take(deck: Deck, seconds: float, timeout: float = 10) -> np.ndarray:
    frames: list[np.ndarray] = []
    deadline = time.monotonic() + timeout
    while len(frames) * 0.02 < seconds and time.monotonic() < deadline:
        frame = deck.next_frame()
        if frame is None:
            if deck.finished:
                break
            time.sleep(0.005)
        else:
            frames.append(frame)
    return np.concatenate(frames)


def test_it_plays_from_the_cue_and_seeks_within_the_file(tmp_path: Path) -> None:
    deck = Deck(two_tones(tmp_path / "tones.wav"), ahead=20)
    try:
        deck.cue(0.0)
        first = take(deck, 1.5)
        assert len(first) == int(1.5 * SAMPLE_RATE)
        assert band(first, 440) > 0.8 and band(first, 880) < 0.01
        deck.cue(2.5)  # into the second tone
        second = take(deck, 1.0)
        assert band(second, 880) > 0.8 and band(second, 440) < 0.01
        time.sleep(0.3)
        assert deck.ready <= 20  # decoded ahead, never more than the bound
        rest = take(deck, 5.0)
        assert deck.finished and 0.3 <= len(rest) / SAMPLE_RATE <= 0.6  # to the end, then stop
    finally:
        deck.close()


def test_an_unreadable_file_just_ends(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 100)
    deck = Deck(junk)
    try:
        deck.cue(0.0)
        deadline = time.monotonic() + 5
        while not deck.finished and time.monotonic() < deadline:
            assert deck.next_frame() is None  # nothing to play, and the mixer never waits
            time.sleep(0.01)
        assert deck.finished and deck.stats.frames == 0
    finally:
        deck.close()
