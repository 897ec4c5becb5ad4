"""A short run of bench/soak.py, so the soak keeps working (its 30-minute figures live in
bench/README.md): the churn happens, and once its clients are gone the server holds no socket,
peer connection, room or task more than before it."""

from __future__ import annotations

from tests.bench.runner import run_bench


def test_soak_churns_and_the_server_drains_back_to_idle() -> None:
    result, _ = run_bench(
        "soak.py",
        *("--minutes", "0.35", "--warmup", "0.1", "--rooms", "1", "--fans", "4"),
        *("--visit", "6", "--questions", "40", "--votes", "3", "--reactions", "4"),
        *("--room-minutes", "0.15", "--sample-interval", "2", "--timeout", "150"),
        "--json",
        timeout=180,
    )
    churn = result["churn"]
    for key in (
        "joins",
        "leaves",
        "drops",
        "ended_with_room",
        "questions",
        "votes",
        "reactions",
        "listeners_opened",
        "listeners_closed",
    ):
        assert churn[key] > 0, (key, churn)
    assert churn["rooms_ended"] >= 2  # one room ended with its fans in it, and the next one
    assert churn["listeners_closed"] == churn["listeners_opened"]
    assert churn["listeners_heard"] > 0  # the WebRTC listeners got the host's audio
    # Under load the server held what the clients had open...
    assert max(row[5] for row in result["samples"]) > 0  # sockets
    assert max(row[3] for row in result["samples"]) > 0  # peer connections
    # ...and after they left, nothing of it.
    drained = result["drained"]
    assert drained["sockets"] == drained["eio_sockets"] == 0
    assert drained["peers"] == drained["pcs_open"] == 0
    assert drained["rooms"] == drained["media_rooms"] == drained["members"] == 0
    assert drained["tasks"] <= result["idle_tasks"], result["tasks_left"]
    assert result["ok"] and not result["judged"]  # too short to judge RSS; the drain is judged
