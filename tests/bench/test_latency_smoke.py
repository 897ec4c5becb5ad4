"""A short run of bench/latency.py, so the benchmark keeps working (numbers live in bench/):
every burst is heard through the server and peer to peer, with and without the jitter relay,
and every joiner hears the room. No time is asserted."""

from __future__ import annotations

from tests.bench.runner import run_bench

BURSTS = 3
JOINS = 2


def test_latency_bench_hears_every_burst_and_every_joiner() -> None:
    result, _ = run_bench(
        "latency.py",
        *("--bursts", str(BURSTS), "--interval", "0.5", "--joins", str(JOINS)),
        *("--json", "--timeout", "100"),
        timeout=120,
    )
    assert "server_added_ms" in result
    jitter = result["jitter"]
    assert "server_added_ms" in jitter
    for section in (result, jitter):
        for key in ("liveroom_ms", "baseline_ms"):
            bursts = section[key]
            assert {"p50", "p95"} <= bursts.keys()
            assert bursts["spoken"] == BURSTS, (key, bursts)
            # A loaded machine may lose one burst; most must be found where they were spoken.
            assert bursts["heard"] >= BURSTS - 1, (key, bursts)
            assert bursts["spurious"] == 0, (key, bursts)
    assert jitter["relay"]["to_remote"]["relayed"] > 0  # the speaker's leg went through it
    assert result["join_to_first_audio_ms"]["n"] == JOINS, result["detail"]
    assert {"p50", "p95"} <= result["join_to_first_audio_ms"].keys()
    assert result["baseline_offer_to_first_audio_ms"]["n"] == JOINS
