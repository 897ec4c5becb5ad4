"""Reactions for blockers (pure): the room's counts without the taps of whom they block."""

from __future__ import annotations

import pytest

from liveroom.rooms.fanout import REACTIONS_INTERVAL_S, Due, ReactionsDue, counts_without


@pytest.mark.parametrize(
    ("hidden", "left"),
    [
        ((), {"❤️": 5, "🔥": 2}),
        (("troll",), {"❤️": 2, "🔥": 2}),
        (("troll", "spam"), {"❤️": 2, "🔥": 1}),
        (("spam", "nobody"), {"❤️": 5, "🔥": 1}),
    ],
)
def test_counts_without_the_hidden_users_taps(
    hidden: tuple[str, ...], left: dict[str, int]
) -> None:
    counts = {"❤️": 5, "🔥": 2}
    taps = {"troll": {"❤️": 3}, "spam": {"🔥": 1}}
    assert counts_without(counts, taps, hidden) == left


def test_nothing_left_is_an_empty_message() -> None:
    assert counts_without({"❤️": 3}, {"troll": {"❤️": 3}}, ["troll"]) == {}


def test_taps_are_told_apart_only_for_blocked_users_and_only_until_sent() -> None:
    due = Due()
    for _ in range(3):
        due.add_reaction("r", "❤️", "troll")
    due.add_reaction("r", "❤️")
    due.add_reaction("r", "🔥")
    [sent] = due.reactions_due(1.0)
    assert sent == ReactionsDue("r", {"❤️": 4, "🔥": 1}, {"troll": {"❤️": 3}})
    assert due.reactions_due(1.0 + REACTIONS_INTERVAL_S) == []  # nothing new: nothing owed
    due.add_reaction("r", "🔥")
    [later] = due.reactions_due(1.0 + REACTIONS_INTERVAL_S)
    assert later.taps == {} and later.counts == {"🔥": 1}
