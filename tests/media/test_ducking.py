"""Ducking, pure: the music drops about 10 dB while someone talks, smoothly, and comes back."""

from __future__ import annotations

import itertools

import numpy as np

from liveroom.media.ducking import Ducker
from liveroom.media.mixer import FRAME_SAMPLES, dbov

TONE = (10_000 * np.sin(2 * np.pi * 440 * np.arange(FRAME_SAMPLES) / 48_000)).astype(np.int16)
TALKING = {"host": -20.0}
QUIET = {"host": -127.0}


def run(ducker: Ducker, levels: dict[str, float], ticks: int) -> list[float]:
    return [dbov(ducker.apply(TONE, levels)) for _ in range(ticks)]


def test_the_music_ducks_by_ten_db_within_a_tenth_of_a_second() -> None:
    ducker = Ducker()
    full = dbov(TONE)
    assert run(ducker, QUIET, 5) == [full] * 5  # nobody talks: untouched
    levels = run(ducker, TALKING, 25)
    assert abs(full - levels[-1] - 10) < 0.2
    assert all(abs(a - b) <= 2.1 for a, b in itertools.pairwise(levels))  # no jumps
    assert levels.index(min(levels)) <= 6  # down in ~100 ms


def test_it_holds_through_pauses_in_speech_then_comes_back_slowly() -> None:
    ducker = Ducker()
    run(ducker, TALKING, 20)
    held = run(ducker, QUIET, 15)  # 300 ms of quiet: still ducked
    assert max(held) < dbov(TONE) - 9.5
    back = run(ducker, QUIET, 40)
    assert abs(back[-1] - dbov(TONE)) < 0.2
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(back))  # only up
