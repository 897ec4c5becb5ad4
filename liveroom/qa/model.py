"""The Q&A board of one room: questions, votes, pinning and the question state machine.

Pure: :func:`decide` checks a command against the board and returns an :class:`Outcome` (the
questions as they will be, the vote to record, what the stage must do) without changing
anything; the service writes the outcome to SQL and only then :meth:`Board.commit`\\ s it. A
refused command raises and changes nothing.

States::

    pending ──approve──▶ approved ──answered──▶ answered
       │                    │
       └──reject──▶ rejected└──reject──▶ rejected          (any) ──withdraw (author)──▶ withdrawn
                                                           (any) ──delete (staff)──▶ gone

``open`` mode asks straight into ``approved``. One question at a time is pinned ("on stage
now"); answering or leaving ``approved`` unpins it.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from liveroom.errors import Conflict, Forbidden, Full, Invalid, NotFound
from liveroom.permissions import STAGE, Role
from liveroom.rooms.stage import QaMode, UserInfo

MS_PER_HOUR = 3_600_000


class QuestionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    ANSWERED = "answered"
    WITHDRAWN = "withdrawn"


class Sort(StrEnum):
    HOT = "hot"
    TOP = "top"
    NEW = "new"


@dataclass(frozen=True, slots=True)
class QaLimits:
    max_chars: int = 280
    """Unicode code points after trimming."""
    gravity: float = 1.8
    """How fast age pulls a question down in ``hot`` (Hacker News uses 1.8)."""
    max_questions: int = 5000
    """Per room, every status counted: a room's board stays bounded in memory and SQL."""


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    room_id: str
    author: UserInfo
    text: str
    anonymous: bool
    status: QuestionStatus
    votes: int
    created_at: int
    answered_at: int | None = None
    reason: str | None = None
    """Why it was rejected (shown to its author and staff)."""
    pinned: bool = False
    brought: bool = False
    """Its author was invited on stage for it: accepting pins it, answering sends them back."""


# --- commands ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ask:
    question_id: str  # chosen by the service (ids are not the model's business)
    text: str
    anonymous: bool
    mode: QaMode


@dataclass(frozen=True, slots=True)
class Vote:
    question_id: str
    on: bool


@dataclass(frozen=True, slots=True)
class Approve:
    question_id: str


@dataclass(frozen=True, slots=True)
class Reject:
    question_id: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Pin:
    question_id: str


@dataclass(frozen=True, slots=True)
class Answered:
    question_id: str


@dataclass(frozen=True, slots=True)
class Withdraw:
    question_id: str


@dataclass(frozen=True, slots=True)
class Delete:
    question_id: str


@dataclass(frozen=True, slots=True)
class BringToStage:
    """Staff pick a question: its author comes on stage for it. The service says where the author
    stands now (``author_role``: ``None`` when not in the room), since the model knows no
    presence."""

    question_id: str
    author_banned: bool = False
    author_role: Role | None = None


@dataclass(frozen=True, slots=True)
class AuthorOnStage:
    """The stage says: this user now has a microphone (they accepted). Pins what they were
    brought up for."""

    user_id: str


Command = Ask | Vote | Approve | Reject | Pin | Answered | Withdraw | Delete | BringToStage
StageNews = AuthorOnStage


# --- outcomes ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InviteAuthor:
    user_id: str


@dataclass(frozen=True, slots=True)
class ReturnAuthor:
    """The brought-up author's question is answered: back to the audience (if the room says so)."""

    user_id: str


Effect = InviteAuthor | ReturnAuthor


@dataclass(frozen=True, slots=True)
class Outcome:
    changed: tuple[Question, ...] = ()
    removed: tuple[str, ...] = ()
    vote: tuple[str, str, bool] | None = None
    """(question_id, user_id, on): a vote to record or take back."""
    effects: tuple[Effect, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.changed or self.removed or self.vote)


NOTHING = Outcome()


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    name: str
    verified: bool
    staff: bool


# --- the board -----------------------------------------------------------------------------------


@dataclass
class Board:
    """One room's questions and who voted for what; ``version`` grows with every change."""

    room_id: str
    questions: dict[str, Question] = field(default_factory=dict)
    voters: dict[str, set[str]] = field(default_factory=dict)
    version: int = 0

    def get(self, question_id: str) -> Question:
        question = self.questions.get(question_id)
        if question is None:
            raise NotFound("no such question")
        return question

    @property
    def pinned(self) -> Question | None:
        return next((q for q in self.questions.values() if q.pinned), None)

    def voted(self, question_id: str, user_id: str) -> bool:
        return user_id in self.voters.get(question_id, ())

    def commit(self, outcome: Outcome) -> None:
        """Make a (persisted) outcome true in memory."""
        if outcome.empty:
            return
        for question in outcome.changed:
            self.questions[question.id] = question
        for question_id in outcome.removed:
            self.questions.pop(question_id, None)
            self.voters.pop(question_id, None)
        if outcome.vote is not None:
            question_id, user_id, on = outcome.vote
            voters = self.voters.setdefault(question_id, set())
            if on:
                voters.add(user_id)
            else:
                voters.discard(user_id)
        self.version += 1


def clean_text(text: str, limits: QaLimits) -> str:
    """Trimmed, NFC; 1..max_chars code points, no control characters except newlines."""
    text = unicodedata.normalize("NFC", text).strip()
    if not text:
        raise Invalid("text: write a question")
    if len(text) > limits.max_chars:
        raise Invalid(f"text: at most {limits.max_chars} characters ({len(text)} given)")
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        raise Invalid("text: control characters are not allowed")
    return text


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


def decide(board: Board, command: Command, actor: Actor, now_ms: int, limits: QaLimits) -> Outcome:
    """What ``command`` by ``actor`` would change, or raise why it may not (nothing changes)."""
    match command:
        case Ask():
            return _ask(board, command, actor, now_ms, limits)
        case Vote():
            return _vote(board, command, actor)
        case Approve(question_id=qid):
            return _approve(board.get(qid))
        case Reject(question_id=qid, reason=reason):
            return _reject(board.get(qid), reason)
        case Pin(question_id=qid):
            return _pin(board, board.get(qid))
        case Answered(question_id=qid):
            return _answered(board.get(qid), now_ms)
        case Withdraw(question_id=qid):
            return _withdraw(board.get(qid), actor)
        case Delete(question_id=qid):
            board.get(qid)
            return Outcome(removed=(qid,))
        case BringToStage():
            return _bring(board, command)
    raise Invalid(f"unknown Q&A command {command!r}")


def _vote(board: Board, vote: Vote, actor: Actor) -> Outcome:
    question = board.get(vote.question_id)
    if question.status is not QuestionStatus.APPROVED:
        raise Conflict("only open, approved questions take votes")
    if board.voted(question.id, actor.id) == vote.on:
        return NOTHING  # a retried vote (or unvote) is accepted and changes nothing
    votes = question.votes + (1 if vote.on else -1)
    return Outcome(changed=(replace(question, votes=votes),), vote=(question.id, actor.id, vote.on))


def _approve(question: Question) -> Outcome:
    if question.status is QuestionStatus.APPROVED:
        return NOTHING
    if question.status is not QuestionStatus.PENDING:
        raise Conflict(f"only pending questions can be approved (this one is {question.status})")
    return Outcome(changed=(replace(question, status=QuestionStatus.APPROVED),))


def _reject(question: Question, reason: str | None) -> Outcome:
    if question.status is QuestionStatus.REJECTED:
        return NOTHING
    if question.status not in (QuestionStatus.PENDING, QuestionStatus.APPROVED):
        raise Conflict(f"a question that is {question.status} cannot be rejected")
    rejected = replace(
        question, status=QuestionStatus.REJECTED, reason=reason, pinned=False, brought=False
    )
    return Outcome(changed=(rejected,))


def _answered(question: Question, now_ms: int) -> Outcome:
    if question.status is QuestionStatus.ANSWERED:
        return NOTHING
    if question.status is not QuestionStatus.APPROVED:
        raise Conflict(f"only approved questions can be answered (this one is {question.status})")
    answered = replace(
        question, status=QuestionStatus.ANSWERED, answered_at=now_ms, pinned=False, brought=False
    )
    effects = (ReturnAuthor(question.author.id),) if question.brought else ()
    return Outcome(changed=(answered,), effects=effects)


def _withdraw(question: Question, actor: Actor) -> Outcome:
    if question.author.id != actor.id:
        raise Forbidden("only its author can withdraw a question")
    if question.status is QuestionStatus.WITHDRAWN:
        return NOTHING
    if question.status is QuestionStatus.ANSWERED:
        raise Conflict("an answered question cannot be withdrawn")
    withdrawn = replace(question, status=QuestionStatus.WITHDRAWN, pinned=False, brought=False)
    return Outcome(changed=(withdrawn,))


def _ask(board: Board, ask: Ask, actor: Actor, now_ms: int, limits: QaLimits) -> Outcome:
    if ask.mode is QaMode.OFF:
        raise Conflict("questions are off in this room")
    text = clean_text(ask.text, limits)
    if len(board.questions) >= limits.max_questions:
        raise Full(f"this room has taken its {limits.max_questions} questions")
    for q in board.questions.values():
        if (
            q.author.id == actor.id
            and q.status is not QuestionStatus.WITHDRAWN
            and _same_text(q.text, text)
        ):
            raise Conflict("you already asked this question")
    status = QuestionStatus.APPROVED if ask.mode is QaMode.OPEN else QuestionStatus.PENDING
    question = Question(
        id=ask.question_id,
        room_id=board.room_id,
        author=UserInfo(actor.id, actor.name, actor.verified),
        text=text,
        anonymous=ask.anonymous,
        status=status,
        votes=0,
        created_at=now_ms,
    )
    return Outcome(changed=(question,))


def _pin(board: Board, question: Question) -> Outcome:
    if question.pinned:
        return NOTHING
    if question.status is not QuestionStatus.APPROVED:
        raise Conflict(f"only approved questions can be pinned (this one is {question.status})")
    previous = board.pinned
    unpinned = (replace(previous, pinned=False),) if previous is not None else ()
    return Outcome(changed=(*unpinned, replace(question, pinned=True)))


def _bring(board: Board, bring: BringToStage) -> Outcome:
    question = board.get(bring.question_id)
    if question.status is not QuestionStatus.APPROVED:
        raise Conflict(
            f"only approved questions can be brought to the stage (this one is {question.status})"
        )
    if question.anonymous:
        raise Conflict("the question is anonymous: bringing its asker on stage would name them")
    if bring.author_banned:
        raise Conflict("the asker is banned from this room")
    if bring.author_role is None:
        raise Conflict("the asker is not in the room right now")
    if bring.author_role is Role.MODERATOR:
        raise Conflict("the asker moderates this room: pin the question instead")
    if bring.author_role in STAGE:
        return _pin(board, question)  # already has a microphone: straight to "on stage now"
    brought = replace(question, brought=True)
    return Outcome(changed=(brought,), effects=(InviteAuthor(question.author.id),))


def not_invited(board: Board, user_id: str) -> Outcome:
    """The user's invitation ended without them coming on stage (declined, withdrawn, left):
    their questions are no longer waiting for them."""
    waiting = [q for q in board.questions.values() if q.brought and q.author.id == user_id]
    return Outcome(changed=tuple(replace(q, brought=False) for q in waiting))


def on_stage(board: Board, news: StageNews) -> Outcome:
    """The author of a brought-up question now speaks: pin it (the latest one, if several)."""
    mine = [
        q
        for q in board.questions.values()
        if q.brought and q.author.id == news.user_id and q.status is QuestionStatus.APPROVED
    ]
    if not mine:
        return NOTHING
    question = max(mine, key=lambda q: q.created_at)
    if question.pinned:
        return NOTHING
    return _pin(board, question)


# --- ranking -------------------------------------------------------------------------------------


def hot_score(question: Question, now_ms: int, gravity: float) -> float:
    """Hacker News style: votes / (age in hours + 2) ^ gravity."""
    age_hours = max(0.0, (now_ms - question.created_at) / MS_PER_HOUR)
    return question.votes / math.pow(age_hours + 2.0, gravity)


def ranked(
    questions: Iterable[Question], sort: Sort, now_ms: int, limits: QaLimits
) -> list[Question]:
    """Approved questions in ``sort`` order; ties go to the older question."""
    match sort:
        case Sort.HOT:
            return sorted(
                questions,
                key=lambda q: (-hot_score(q, now_ms, limits.gravity), q.created_at, q.id),
            )
        case Sort.TOP:
            return sorted(questions, key=lambda q: (-q.votes, q.created_at, q.id))
        case Sort.NEW:
            return sorted(questions, key=lambda q: (-q.created_at, q.id))
