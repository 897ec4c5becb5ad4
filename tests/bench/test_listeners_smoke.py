"""A short run of bench/listeners.py, so the benchmark keeps working (numbers live in bench/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_listeners_bench_runs_and_reports_its_keys() -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "listeners.py"),
            "--listeners",
            "3",
            "--seconds",
            "2",
            "--json",
            "--no-baseline",
            "--timeout",
            "90",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    for key in ("listeners", "listeners_per_core", "us_per_packet", "loss", "server_cpu"):
        assert key in result
    assert result["listeners"] == 3
    assert result["connected"] == 3
    # The smoke proves the bench runs and measures; loss figures are the bench's own report (on a
    # loaded CI machine three listeners for 2 s can lose a tenth). Most packets must arrive.
    assert result["loss"] < 0.5
