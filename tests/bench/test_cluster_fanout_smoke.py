"""A small run of bench/cluster_fanout.py, so the benchmark keeps working (numbers in docs/)."""

from __future__ import annotations

from tests.bench.runner import run_bench


def test_cluster_fanout_bench_runs_and_measures_across_nodes() -> None:
    result, _ = run_bench(
        "cluster_fanout.py",
        "--sockets",
        "20",
        "--seconds",
        "2",
        "--json",
        timeout=180,
    )
    assert result["sockets"] == 20
    assert result["delivered"] > 20  # the edge's sockets got the room's events, through Redis
    assert result["redis_publish_per_s"] > 0
    assert result["edge_us_per_delivered"] > 0
