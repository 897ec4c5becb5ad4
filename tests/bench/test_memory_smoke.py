"""A short run of bench/memory.py, so the benchmark keeps working (numbers live in bench/): every
idle socket joins and every WebRTC listener connects, on liveroom and on both baselines. With
this few clients the KB figures are noise; no size is asserted."""

from __future__ import annotations

from tests.bench.runner import run_bench

SOCKETS = 10
LISTENERS = 2


def test_memory_bench_connects_everyone_and_reports_its_keys() -> None:
    result, _ = run_bench(
        "memory.py",
        *("--sockets", str(SOCKETS), "--listeners", str(LISTENERS)),
        *("--steady-s", "0.5", "--json", "--timeout", "100"),
        timeout=120,
    )
    for key in ("kb_per_socket", "kb_per_listener", "baseline_kb_per_socket"):
        assert isinstance(result[key], float), (key, result)
    assert "baseline_kb_per_listener" in result
    detail = result["detail"]
    for phase in ("sockets", "sockets_baseline"):
        assert detail[phase]["connected"] == SOCKETS, detail[phase]
        assert detail[phase]["open_at_end"] == SOCKETS + detail[phase]["warm_sockets"]
    for phase in ("listeners", "listeners_baseline"):
        assert detail[phase]["connected"] == LISTENERS, detail[phase]
    assert detail["sockets"]["messages_received"] > SOCKETS  # the room's events reached them
