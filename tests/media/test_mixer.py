"""The mixer, pure: frames in, mixed frames out."""

from __future__ import annotations

import numpy as np
import pytest

from liveroom.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, SILENCE_DBOV, Pcm, dbov, mix, silence


def tone(hz: float, amplitude: int = 8000) -> Pcm:
    t = np.arange(FRAME_SAMPLES) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def const(value: int) -> Pcm:
    return np.full(FRAME_SAMPLES, value, dtype=np.int16)


def test_program_is_the_sum_of_audible_sources() -> None:
    a, b = tone(440), tone(660)
    result = mix({"a": a, "b": b}, audible=["a", "b"])
    np.testing.assert_array_equal(result.program, a.astype(np.int32) + b)


def test_sum_clips_to_int16_instead_of_wrapping() -> None:
    result = mix(
        {"a": const(30000), "b": const(30000), "c": const(-30000)},
        audible=["a", "b"],
        listeners_on_stage=["a", "c"],
    )
    assert (result.program == 32767).all()  # 60000 clipped, not wrapped negative
    np.testing.assert_array_equal(result.minus["a"], const(30000))
    # c is not audible (muted): its frame is in no mix, but it hears the room.
    np.testing.assert_array_equal(result.minus["c"], result.program)
    low = mix({"a": const(-30000), "b": const(-30000)}, audible=["a", "b"])
    assert (low.program == -32768).all()


def test_mix_minus_leaves_out_only_the_listener() -> None:
    a, b, c = tone(440), tone(660), tone(880)
    result = mix(
        {"a": a, "b": b, "c": c}, audible=["a", "b", "c"], listeners_on_stage=["a", "b", "c"]
    )
    np.testing.assert_array_equal(result.minus["a"], b.astype(np.int32) + c)
    np.testing.assert_array_equal(result.minus["b"], a.astype(np.int32) + c)


def test_muted_and_missing_sources_are_silence() -> None:
    a = tone(440)
    result = mix(
        {"a": a, "muted": tone(660)},
        audible=["a", "late"],
        listeners_on_stage=["a", "late", "muted"],
    )
    np.testing.assert_array_equal(result.program, a)
    np.testing.assert_array_equal(result.minus["a"], silence())
    np.testing.assert_array_equal(result.minus["late"], a)
    assert set(result.levels) == {"a"}


def test_nobody_speaking_is_silence() -> None:
    result = mix({}, audible=[], listeners_on_stage=["host"])
    np.testing.assert_array_equal(result.program, silence())
    np.testing.assert_array_equal(result.minus["host"], silence())


def test_wrong_frame_size_is_refused() -> None:
    with pytest.raises(ValueError, match="960"):
        mix({"a": np.zeros(480, dtype=np.int16)}, audible=["a"])


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (const(32767), 0.0),  # full scale
        (const(16384), -6.02),
        (tone(1000, 32767), -3.01),  # a full-scale sine is 3 dB under a square wave
        (const(0), SILENCE_DBOV),
    ],
)
def test_dbov(frame: Pcm, expected: float) -> None:
    assert dbov(frame) == pytest.approx(expected, abs=0.05)
