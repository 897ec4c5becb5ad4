"""A small run of bench/cluster_fanout.py, so the benchmark keeps working (numbers in docs/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cluster_fanout_bench_runs_and_measures_across_nodes() -> None:
    bench = str(ROOT / "bench" / "cluster_fanout.py")
    run = subprocess.run(
        [sys.executable, bench, "--sockets", "20", "--seconds", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["sockets"] == 20
    assert result["delivered"] > 20  # the edge's sockets got the room's events, through Redis
    assert result["redis_publish_per_s"] > 0
    assert result["edge_us_per_delivered"] > 0
