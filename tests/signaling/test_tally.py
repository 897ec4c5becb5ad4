"""Event counts by name: whatever a client sends, the names (metric labels) stay bounded."""

from __future__ import annotations

from liveroom.signaling.tally import OTHER, Tally


def test_known_names_count_as_themselves_and_the_rest_as_other() -> None:
    tally = Tally(lambda name: name in {"room:join", "react"})
    for name in ["room:join", "react", "react", "x" * 10_000, "room:join\x00", None, 7, ["a"]]:
        tally.add(name)
    assert tally.counts == {"room:join": 1, "react": 2, OTHER: 5}
    assert tally.total() == 8


def test_past_the_limit_new_names_are_other() -> None:
    tally = Tally(limit=3)
    for n in range(1000):
        tally.add(f"event-{n}")
    tally.add("event-0")
    assert set(tally.counts) == {"event-0", "event-1", "event-2", OTHER}
    assert tally.counts["event-0"] == 2
    assert tally.counts[OTHER] == 997
