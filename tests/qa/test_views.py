"""What a viewer who blocks someone sees of the Q&A board (pure)."""

from __future__ import annotations

import pytest

from liveroom.qa.model import Board, QaLimits, Question, QuestionStatus, Sort
from liveroom.qa.views import full_list, hidden_by_block
from liveroom.rooms.stage import UserInfo

BLOCKED_AT = 5_000


def question(
    qid: str,
    author: str = "troll",
    *,
    anonymous: bool = False,
    at: int = 9_000,
    status: QuestionStatus = QuestionStatus.APPROVED,
    pinned: bool = False,
) -> Question:
    return Question(
        id=qid,
        room_id="r",
        author=UserInfo(author, author.title(), False),
        text=f"text of {qid}",
        anonymous=anonymous,
        status=status,
        votes=0,
        created_at=at,
        pinned=pinned,
    )


@pytest.mark.parametrize(
    ("q", "staff", "hidden"),
    [
        (question("named-after"), False, True),
        (question("named-before", at=1_000), False, True),
        # Shown to a fan without a name: hiding it would name its author (block, or unblock, a
        # suspect and compare).
        (question("anon-after", anonymous=True), False, False),
        (question("anon-before", anonymous=True, at=1_000), False, False),
        (question("anon-before-staff", anonymous=True, at=1_000), True, True),  # staff see names
        (question("anon-after-staff", anonymous=True), True, True),
        (question("someone-else", author="fan"), False, False),
        (question("someone-else-staff", author="fan"), True, False),
    ],
    ids=lambda v: v.id if isinstance(v, Question) else str(v),
)
def test_which_questions_a_block_hides(q: Question, staff: bool, hidden: bool) -> None:
    assert hidden_by_block(q, {"troll": BLOCKED_AT}, staff) is hidden


def test_a_full_list_leaves_out_what_the_viewer_blocked_pinned_included() -> None:
    board = Board(
        "r",
        {
            q.id: q
            for q in (
                question("pinned", pinned=True),
                question("anon", anonymous=True),
                question("pending", status=QuestionStatus.PENDING),
                question("fan", author="fan"),
            )
        },
    )
    blocked = {"troll": BLOCKED_AT}
    seen = full_list(board, "me", False, Sort.NEW, 10_000, QaLimits(), blocked)
    # The anonymous one stays (hiding it would name its author); staff see it named: not theirs.
    assert [q["id"] for q in seen["questions"]] == ["anon", "fan"] and seen["pinned"] is None
    staff = full_list(board, "me", True, Sort.NEW, 10_000, QaLimits(), blocked)
    assert [q["id"] for q in staff["questions"]] == ["fan"]
    everyone = full_list(board, "other", False, Sort.NEW, 10_000, QaLimits())
    assert {q["id"] for q in everyone["questions"]} == {"anon", "fan"}
    assert everyone["pinned"]["id"] == "pinned"
