"""A short run of bench/listener_loop.py, so the benchmark keeps working (numbers: bench/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_listener_loop_bench_runs_and_reports_its_keys() -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "listener_loop.py"),
            *("--listeners", "3", "--ticks", "40", "--json", "--timeout", "90"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["listeners"] == 3
    assert result["packets"] == 3 * 40  # every listener was sent every tick
    assert result["us_per_packet"] > 0
    assert set(result["breakdown_us"]) == {"sendto", "srtp_protect", "other"}
