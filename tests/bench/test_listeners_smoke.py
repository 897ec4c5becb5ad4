"""A short run of bench/listeners.py, so the benchmark keeps working (numbers live in bench/)."""

from __future__ import annotations

from tests.bench.runner import run_bench


def test_listeners_bench_runs_and_reports_its_keys() -> None:
    result, _ = run_bench(
        "listeners.py",
        "--listeners",
        "3",
        "--seconds",
        "2",
        "--json",
        "--no-baseline",
        "--timeout",
        "90",
        timeout=120,
    )
    for key in ("listeners", "listeners_per_core", "us_per_packet", "loss", "server_cpu"):
        assert key in result
    assert result["listeners"] == 3
    assert result["connected"] == 3
    # The smoke proves the bench runs and measures; loss figures are the bench's own report (on a
    # loaded CI machine three listeners for 2 s can lose a tenth). Most packets must arrive.
    assert result["loss"] < 0.5
