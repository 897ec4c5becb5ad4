"""The Q&A model alone: the question state machine, every refusal with its code, ranking."""

from __future__ import annotations

from dataclasses import replace

import pytest

from liveroom.errors import Conflict, Forbidden, Invalid, LiveroomError, NotFound
from liveroom.permissions import Role
from liveroom.qa import model
from liveroom.qa.model import (
    Actor,
    Board,
    BringToStage,
    InviteAuthor,
    Outcome,
    QaLimits,
    QuestionStatus,
    ReturnAuthor,
    Sort,
)
from liveroom.qa.views import full_list
from liveroom.rooms.stage import QaMode

LIMITS = QaLimits()
FAN = Actor("fan", "Fan", False, staff=False)
OTHER = Actor("other", "Other", False, staff=False)
HOST = Actor("host", "Host", True, staff=True)
HOUR = model.MS_PER_HOUR


def run(board: Board, command: model.Command, actor: Actor = HOST, now: int = 0) -> Outcome:
    outcome = model.decide(board, command, actor, now, LIMITS)
    board.commit(outcome)
    return outcome


def ask(
    board: Board,
    qid: str,
    text: str = "Why?",
    *,
    actor: Actor = FAN,
    mode: QaMode = QaMode.PREMODERATED,
    now: int = 0,
    anonymous: bool = False,
) -> str:
    run(board, model.Ask(qid, text, anonymous, mode), actor, now)
    return qid


def pinned_id(board: Board) -> str | None:
    return board.pinned.id if board.pinned else None


def status(board: Board, qid: str) -> QuestionStatus:
    return board.questions[qid].status


def test_premoderated_questions_wait_open_ones_do_not_off_refuses() -> None:
    board = Board("r")
    assert status(board, ask(board, "a")) is QuestionStatus.PENDING
    assert status(board, ask(board, "b", "Other", mode=QaMode.OPEN)) is QuestionStatus.APPROVED
    with pytest.raises(Conflict, match="off"):
        ask(board, "c", "Third", mode=QaMode.OFF)
    assert board.version == 2 and "c" not in board.questions


@pytest.mark.parametrize(
    ("text", "error"),
    [("   ", Invalid), ("x" * 281, Invalid), ("bell\x07", Invalid)],
)
def test_bad_text_is_refused(text: str, error: type[LiveroomError]) -> None:
    board = Board("r")
    with pytest.raises(error):
        ask(board, "a", text)
    assert board.questions == {} and board.version == 0


def test_text_is_trimmed_and_counted_in_code_points() -> None:
    board = Board("r")
    ask(board, "a", "  " + "🎤" * 280 + "\n")
    assert board.questions["a"].text == "🎤" * 280


def test_the_same_users_duplicate_is_a_conflict_but_not_another_users() -> None:
    board = Board("r")
    ask(board, "a", "When is the tour?")
    with pytest.raises(Conflict, match="already asked"):
        ask(board, "b", "  when IS the   tour? ")
    ask(board, "c", "When is the tour?", actor=OTHER)
    run(board, model.Withdraw("a"), FAN)
    ask(board, "d", "When is the tour?")  # withdrawn: may ask again


# Every command from every state: the new state, or the refusal's code.
ALL = list(QuestionStatus)
TRANSITIONS: dict[str, dict[QuestionStatus, QuestionStatus | type[LiveroomError]]] = {
    "approve": {
        QuestionStatus.PENDING: QuestionStatus.APPROVED,
        QuestionStatus.APPROVED: QuestionStatus.APPROVED,
        QuestionStatus.REJECTED: Conflict,
        QuestionStatus.ANSWERED: Conflict,
        QuestionStatus.WITHDRAWN: Conflict,
    },
    "reject": {
        QuestionStatus.PENDING: QuestionStatus.REJECTED,
        QuestionStatus.APPROVED: QuestionStatus.REJECTED,
        QuestionStatus.REJECTED: QuestionStatus.REJECTED,
        QuestionStatus.ANSWERED: Conflict,
        QuestionStatus.WITHDRAWN: Conflict,
    },
    "answered": {
        QuestionStatus.PENDING: Conflict,
        QuestionStatus.APPROVED: QuestionStatus.ANSWERED,
        QuestionStatus.REJECTED: Conflict,
        QuestionStatus.ANSWERED: QuestionStatus.ANSWERED,
        QuestionStatus.WITHDRAWN: Conflict,
    },
    "withdraw": {
        QuestionStatus.PENDING: QuestionStatus.WITHDRAWN,
        QuestionStatus.APPROVED: QuestionStatus.WITHDRAWN,
        QuestionStatus.REJECTED: QuestionStatus.WITHDRAWN,
        QuestionStatus.ANSWERED: Conflict,
        QuestionStatus.WITHDRAWN: QuestionStatus.WITHDRAWN,
    },
    "pin": {
        QuestionStatus.PENDING: Conflict,
        QuestionStatus.APPROVED: QuestionStatus.APPROVED,
        QuestionStatus.REJECTED: Conflict,
        QuestionStatus.ANSWERED: Conflict,
        QuestionStatus.WITHDRAWN: Conflict,
    },
}
COMMANDS = {
    "approve": (model.Approve, HOST),
    "reject": (model.Reject, HOST),
    "answered": (model.Answered, HOST),
    "withdraw": (model.Withdraw, FAN),
    "pin": (model.Pin, HOST),
}


@pytest.mark.parametrize("start", ALL)
@pytest.mark.parametrize("name", list(TRANSITIONS))
def test_the_state_machine(name: str, start: QuestionStatus) -> None:
    board = Board("r")
    ask(board, "q")
    board.questions["q"] = replace(board.questions["q"], status=start)
    version = board.version
    make, actor = COMMANDS[name]
    expected = TRANSITIONS[name][start]
    if isinstance(expected, QuestionStatus):
        run(board, make("q"), actor)
        assert status(board, "q") is expected
    else:
        with pytest.raises(expected):
            run(board, make("q"), actor)
        assert status(board, "q") is start and board.version == version


def test_unknown_questions_are_not_found_and_only_authors_withdraw() -> None:
    board = Board("r")
    for command in (model.Approve("x"), model.Vote("x", True), model.Delete("x")):
        with pytest.raises(NotFound):
            run(board, command)
    ask(board, "q")
    with pytest.raises(Forbidden):
        run(board, model.Withdraw("q"), OTHER)


def test_one_vote_per_user_and_only_on_open_approved_questions() -> None:
    board = Board("r")
    ask(board, "q")
    with pytest.raises(Conflict):
        run(board, model.Vote("q", True), OTHER)
    run(board, model.Approve("q"))
    assert board.questions["q"].votes == 0  # the author's own question is not auto-voted
    run(board, model.Vote("q", True), OTHER)
    assert run(board, model.Vote("q", True), OTHER).empty  # again: accepted, nothing changes
    run(board, model.Vote("q", True), FAN)
    assert board.questions["q"].votes == 2 and board.voted("q", "other")
    run(board, model.Vote("q", False), OTHER)
    assert board.questions["q"].votes == 1 and not board.voted("q", "other")
    run(board, model.Answered("q"))
    with pytest.raises(Conflict):
        run(board, model.Vote("q", True), OTHER)


def test_one_pinned_question_and_answering_unpins() -> None:
    board = Board("r")
    for qid in ("a", "b"):
        ask(board, qid, qid, mode=QaMode.OPEN)
    run(board, model.Pin("a"))
    run(board, model.Pin("b"))
    assert pinned_id(board) == "b"
    assert not board.questions["a"].pinned
    run(board, model.Answered("b"), now=5)
    assert pinned_id(board) is None and board.questions["b"].answered_at == 5


def test_delete_removes_a_question_and_its_votes() -> None:
    board = Board("r")
    ask(board, "q", mode=QaMode.OPEN)
    run(board, model.Vote("q", True), OTHER)
    outcome = run(board, model.Delete("q"))
    assert outcome.removed == ("q",) and "q" not in board.questions and "q" not in board.voters


def test_bringing_the_asker_on_stage() -> None:
    board = Board("r")
    ask(board, "q", mode=QaMode.OPEN)
    refusals = (
        (BringToStage("q", False, None), "not in the room"),
        (BringToStage("q", True, Role.LISTENER), "banned"),
        (BringToStage("q", False, Role.MODERATOR), "moderates"),
    )
    for command, error in refusals:
        with pytest.raises(Conflict, match=error):
            run(board, command)
        assert not board.questions["q"].brought
    outcome = run(board, BringToStage("q", False, Role.LISTENER))
    assert outcome.effects == (InviteAuthor("fan"),) and board.questions["q"].brought
    assert not board.questions["q"].pinned  # pinned when they accept
    board.commit(model.on_stage(board, model.AuthorOnStage("fan")))
    assert pinned_id(board) == "q"
    outcome = run(board, model.Answered("q"))
    assert outcome.effects == (ReturnAuthor("fan"),)
    assert not board.questions["q"].brought


def test_an_asker_already_on_stage_is_pinned_at_once() -> None:
    board = Board("r")
    ask(board, "q", mode=QaMode.OPEN)
    ask(board, "p", "Pinned before", actor=OTHER, mode=QaMode.OPEN)
    run(board, model.Pin("p"))
    outcome = run(board, BringToStage("q", False, Role.COHOST))
    assert outcome.effects == ()  # a co-host is not invited, and not sent back when answered
    assert pinned_id(board) == "q" and not board.questions["p"].pinned
    assert not board.questions["q"].brought
    assert run(board, model.Answered("q")).effects == ()


def test_anonymous_questions_are_not_brought_up_and_a_declined_invite_stops_waiting() -> None:
    board = Board("r")
    ask(board, "anon", "Who am I?", mode=QaMode.OPEN, anonymous=True)
    with pytest.raises(Conflict, match="anonymous"):
        run(board, BringToStage("anon", False, Role.LISTENER))
    ask(board, "q", mode=QaMode.OPEN)
    run(board, BringToStage("q", False, Role.LISTENER))
    board.commit(model.not_invited(board, "fan"))
    assert not board.questions["q"].brought
    assert model.on_stage(board, model.AuthorOnStage("fan")).empty  # later on stage: no pin


def test_hot_ranks_by_votes_decayed_by_age_ties_to_the_older() -> None:
    board = Board("r")
    ask(board, "old", "Old", mode=QaMode.OPEN, now=0)
    ask(board, "new", "New", mode=QaMode.OPEN, now=10 * HOUR)
    ask(board, "tie", "Tie", actor=OTHER, mode=QaMode.OPEN, now=10 * HOUR)
    for voter in ("v1", "v2", "v3", "v4"):
        run(board, model.Vote("old", True), Actor(voter, voter, False, False))
    for voter in ("v1", "v2"):
        run(board, model.Vote("new", True), Actor(voter, voter, False, False))
        run(board, model.Vote("tie", True), Actor(voter, voter, False, False))
    now = 10 * HOUR
    # old: 4 / 12^1.8 ≈ 0.045; new and tie: 2 / 2^1.8 ≈ 0.57 → the fresh ones first.
    approved = list(board.questions.values())
    assert [q.id for q in model.ranked(approved, Sort.HOT, now, LIMITS)] == ["new", "tie", "old"]
    assert [q.id for q in model.ranked(approved, Sort.TOP, now, LIMITS)] == ["old", "new", "tie"]
    assert [q.id for q in model.ranked(approved, Sort.NEW, now, LIMITS)][2] == "old"
    # Much later the four votes win again: age weighs less as both grow old.
    assert model.hot_score(board.questions["old"], 10 * HOUR, 1.8) == pytest.approx(4 / 12**1.8)


def test_lists_show_each_viewer_what_they_may_see() -> None:
    board = Board("r")
    ask(board, "pending", "Pending")
    ask(board, "anon", "Anon", actor=OTHER, mode=QaMode.OPEN, anonymous=True)
    ask(board, "pinned", "Pinned", actor=OTHER, mode=QaMode.OPEN)
    run(board, model.Pin("pinned"))
    audience = full_list(board, "someone", False, Sort.HOT, 0, LIMITS)
    assert [q["id"] for q in audience["questions"]] == ["anon"]
    assert audience["questions"][0]["author"] is None
    assert audience["pinned"]["id"] == "pinned"
    author = full_list(board, "fan", False, Sort.HOT, 0, LIMITS)
    assert [q["id"] for q in author["questions"]] == ["anon", "pending"]
    staff = full_list(board, "host", True, Sort.HOT, 0, LIMITS)
    assert {q["id"] for q in staff["questions"]} == {"anon", "pending"}
    assert next(q for q in staff["questions"] if q["id"] == "anon")["author"]["id"] == "other"
