"""A small run of bench/rankings.py, so the benchmark keeps working (numbers live in docs/)."""

from __future__ import annotations

from tests.bench.runner import run_bench


def test_rankings_bench_runs_and_times_every_query() -> None:
    result, output = run_bench(
        "rankings.py",
        "--rooms",
        "300",
        "--repeat",
        "1",
        timeout=300,
    )
    assert "rooms peak all" in output  # the readable table
    sqlite = result["results"][0]
    assert sqlite["database"] == "sqlite" and sqlite["rooms"] == 300
    assert {"rooms unique week KR", "artists all", "markets host all"} <= set(sqlite["queries"])
    assert all(q["median_ms"] > 0 for q in sqlite["queries"].values())
