"""A small run of bench/churn.py, so the benchmark keeps working (numbers live in bench/): both
servers take the joins and leaves at both room sizes, and the naive one sends a message to the
room for each while liveroom sends the joiner its own."""

from __future__ import annotations

from tests.bench.runner import run_bench

KEYS = (
    "cpu_share",
    "frames_per_s",
    "packets_per_s",
    "broadcasts_per_s",
    "joins_per_s",
    "leaves_per_s",
    "handled_joins_per_s",
    "handled_leaves_per_s",
    "frames_per_churn",
)


def test_churn_runs_both_servers_at_both_sizes() -> None:
    result, _ = run_bench(
        "churn.py",
        *("--listeners", "20", "--rate", "20", "--seconds", "2"),
        *("--timeout", "90", "--json"),
        timeout=120,
    )
    assert result["sizes"] == [2, 20]
    assert list(result["servers"]) == ["liveroom", "plain"]
    for name, server in result["servers"].items():
        assert server["churners"] == result["churners"], name  # every churner connected
        for size in ("2", "20"):
            entry = server["by_size"][size]
            for key in KEYS:
                assert key in entry, (name, size, key)
            assert entry["listeners"] == int(size), (name, entry)
            assert entry["failed"] == 0 and entry["failed_to_connect"] == 0, (name, entry)
            assert entry["joins_per_s"] > 0 and entry["leaves_per_s"] > 0, (name, entry)
            assert entry["handled_joins_per_s"] > 0, (name, entry)
        assert server["growth"] is not None
    # Counts, not times: the naive server tells the whole room of each join and leave; liveroom
    # tells the joiner (its ack and views) and coalesces what the room hears.
    naive = result["servers"]["plain"]["by_size"]["20"]["frames_per_churn"]
    ours = result["servers"]["liveroom"]["by_size"]["20"]["frames_per_churn"]
    assert naive > 20 > ours, (naive, ours)
