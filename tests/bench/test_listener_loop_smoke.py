"""A short run of bench/listener_loop.py, so the benchmark keeps working (numbers: bench/)."""

from __future__ import annotations

from tests.bench.runner import run_bench


def test_listener_loop_bench_runs_and_reports_its_keys() -> None:
    result, _ = run_bench(
        "listener_loop.py",
        *("--listeners", "3", "--ticks", "40", "--json", "--timeout", "90"),
        timeout=120,
    )
    assert result["listeners"] == 3
    assert result["packets"] == 3 * 40  # every listener was sent every tick
    assert result["us_per_packet"] > 0
    assert set(result["breakdown_us"]) == {"sendto", "srtp_protect", "other"}
