"""Ducking: the room's music steps back while someone on stage talks. Pure, one tick at a time.

While any speaker is above ``talk_dbov`` the music's gain moves towards ``duck_db`` (−10 dB);
after ``hold_ms`` of quiet it moves back to 0 dB. Gain changes at most ``ramp_db_per_s`` (so a
duck takes ~100 ms down and ~330 ms up), and within a frame the gain is interpolated sample by
sample, so the music never clicks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from liveroom.media.mixer import FRAME_MS, FRAME_SAMPLES, Pcm


@dataclass(frozen=True, slots=True)
class DuckingRules:
    duck_db: float = -10.0
    talk_dbov: float = -50.0
    hold_ms: int = 400
    down_db_per_s: float = 100.0
    up_db_per_s: float = 30.0


class Ducker:
    def __init__(self, rules: DuckingRules = DuckingRules()) -> None:
        self.rules = rules
        self.gain_db = 0.0
        self._quiet_ms = rules.hold_ms

    def apply(self, music: Pcm, speaker_levels: Mapping[str, float]) -> Pcm:
        """The music frame at this tick's gain, given the speakers' levels this tick."""
        rules = self.rules
        talking = any(level > rules.talk_dbov for level in speaker_levels.values())
        self._quiet_ms = 0 if talking else self._quiet_ms + FRAME_MS
        target = rules.duck_db if self._quiet_ms < rules.hold_ms else 0.0
        start = self.gain_db
        if target < start:
            end = max(target, start - rules.down_db_per_s * FRAME_MS / 1000)
        else:
            end = min(target, start + rules.up_db_per_s * FRAME_MS / 1000)
        self.gain_db = end
        if start == end == 0.0:
            return music
        ramp = np.linspace(start, end, FRAME_SAMPLES, endpoint=False)
        scaled = music.astype(np.float64) * np.power(10.0, ramp / 20.0)
        return np.clip(np.round(scaled), -32768, 32767).astype(np.int16)
