"""A small run of bench/rankings.py, so the benchmark keeps working (numbers live in docs/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_rankings_bench_runs_and_times_every_query() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "rankings.py"), "--rooms", "300", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "rooms peak all" in run.stdout  # the readable table
    result = json.loads(run.stdout.strip().splitlines()[-1])
    sqlite = result["results"][0]
    assert sqlite["database"] == "sqlite" and sqlite["rooms"] == 300
    assert {"rooms unique week KR", "artists all", "markets host all"} <= set(sqlite["queries"])
    assert all(q["median_ms"] > 0 for q in sqlite["queries"].values())
