"""The pure part of blocks: what a change does, and the index of who blocks whom."""

from __future__ import annotations

import pytest

from liveroom.blocks.model import BlockIndex, needs_change
from liveroom.errors import Full, Invalid


@pytest.mark.parametrize(
    ("blocked", "user", "on", "changes"),
    [
        ({}, "b", True, True),
        ({"b": 1}, "b", True, False),  # blocking again: accepted, nothing changes
        ({"b": 1}, "b", False, True),
        ({}, "b", False, False),  # unblocking someone not blocked: accepted
        ({"b": 1, "c": 2}, "c", False, True),
    ],
)
def test_a_change_is_needed_only_when_it_changes_the_list(
    blocked: dict[str, int], user: str, on: bool, changes: bool
) -> None:
    assert needs_change("me", user, blocked, on) is changes


@pytest.mark.parametrize("on", [True, False])
def test_nobody_blocks_themself(on: bool) -> None:
    with pytest.raises(Invalid, match="yourself"):
        needs_change("me", "me", {}, on)


def test_the_list_is_bounded_but_stays_editable_when_full() -> None:
    full = {f"u{i}": i for i in range(3)}
    with pytest.raises(Full, match="unblock someone first"):
        needs_change("me", "new", full, True, limit=3)
    assert needs_change("me", "u1", full, True, limit=3) is False  # already there: fine
    assert needs_change("me", "u1", full, False, limit=3) is True  # making room: fine


def test_the_index_answers_both_ways_and_forgets_blockers_who_leave() -> None:
    index = BlockIndex()
    index.put("ana", {"troll": 10, "spam": 20})
    index.block("bo", "troll", 30)
    assert dict(index.blocked_by("ana")) == {"troll": 10, "spam": 20}
    assert index.blockers_of("troll") == {"ana", "bo"}
    assert index.watched("spam") and not index.watched("ana")
    assert dict(index.blocked_by("nobody")) == {}

    index.unblock("bo", "troll")
    assert index.blockers_of("troll") == {"ana"}
    assert not index.holds("bo")  # a blocker with an empty list is not held
    index.drop("ana")
    assert not index.watched("troll") and not index.watched("spam")
    assert len(index) == 0


def test_putting_a_list_again_replaces_it() -> None:
    index = BlockIndex()
    index.put("ana", {"old": 1})
    index.put("ana", {"new": 2})
    assert dict(index.blocked_by("ana")) == {"new": 2}
    assert not index.watched("old")
    index.unblock("ana", "never-blocked")  # nothing to do, nothing breaks
    assert index.blockers_of("new") == {"ana"}


def test_what_the_index_hands_out_cannot_change_it() -> None:
    index = BlockIndex()
    index.block("ana", "troll", 1)
    view = index.blocked_by("ana")
    with pytest.raises(TypeError):
        view["x"] = 2  # type: ignore[index]
    blockers = index.blockers_of("troll")
    assert isinstance(blockers, frozenset)
