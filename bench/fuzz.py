"""The stateful fuzzer of ``tests/fuzzing.py`` for a long run: real clients, random events and
garbage against a real server, every invariant checked after every step.

``python bench/fuzz.py [--steps 100000] [--steps-per-example 200] [--seed N] [--known-defects]``

Runs examples (a fresh server and fresh clients each) until ``--steps`` steps ran, prints steps
per second and what the events were answered, and the first failure with hypothesis's minimal
failing program and a ``@reproduce_failure`` blob; exits 1 on a failure. ``--known-defects``: do
not steer clear of the defects listed in ``tests/fuzzing.py`` ``KNOWN_DEFECTS`` (the run then
fails on them). ``--seed N``: the same run again. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fuzzing import (
    FuzzOptions,
    FuzzStats,
    run_fuzz,
    steps_per_second,
)

ROUND = 25
"""Examples per hypothesis run: progress is printed after each."""


def _answers_table(stats: FuzzStats) -> str:
    by_event: dict[str, dict[str, int]] = defaultdict(dict)
    for (event, code), n in stats.acks.items():
        by_event[event][code] = n
    width = max((len(e) for e in by_event), default=5)
    lines = [f"{'event':{width}}  answers"]
    for event in sorted(by_event):
        answers = ", ".join(f"{c} {n}" for c, n in sorted(by_event[event].items()))
        lines.append(f"{event:{width}}  {answers}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000, help="steps to run (at least)")
    parser.add_argument("--steps-per-example", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (reproducible)")
    parser.add_argument("--known-defects", action="store_true", help="do not avoid them")
    parser.add_argument(
        "--shrink", action="store_true", help="make a failing program minimal (slow: a real server)"
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)

    stats = FuzzStats()
    options = FuzzOptions(known_defects=args.known_defects)
    started = time.monotonic()
    failure: str | None = None
    rounds = 0
    try:
        while stats.steps < args.steps:
            left = args.steps - stats.steps
            run_fuzz(
                options,
                stats,
                examples=max(1, min(ROUND, math.ceil(left / args.steps_per_example))),
                steps_per_example=args.steps_per_example,
                derandomize=False,
                print_blob=True,
                seed=None if args.seed is None else args.seed + rounds,
                shrink=args.shrink,
            )
            rounds += 1
            if not args.json:
                rate = steps_per_second(stats, time.monotonic() - started)
                print(f"{stats.steps} steps, {stats.examples} examples, {rate:.0f} steps/s")
    except KeyboardInterrupt:
        failure = "interrupted"
    except Exception:
        failure = traceback.format_exc()
    elapsed = time.monotonic() - started
    rate = steps_per_second(stats, elapsed)
    if not args.json:
        print(_answers_table(stats))
        if failure is not None:
            print(f"\nFAILURE after {stats.steps} steps:\n{failure}")
        print(f"\n{stats.steps} steps in {elapsed:.0f} s: {rate:.1f} steps/s")
    result = {
        "steps": stats.steps,
        "examples": stats.examples,
        "seconds": round(elapsed, 1),
        "steps_per_s": round(rate, 1),
        "events_ok": len(stats.ok_events()),
        "frames_over_limit": stats.closed_by_size,
        "reconnects": stats.reconnects,
        "failed": failure is not None,
    }
    print(json.dumps(result))
    return 1 if failure is not None else 0


if __name__ == "__main__":
    sys.exit(main())
