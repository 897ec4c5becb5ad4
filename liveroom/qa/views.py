"""What each viewer sees of the Q&A board.

- The audience: approved and answered questions; an anonymous question's author is ``null``.
- Its author: their own questions in every state (pending, rejected with the reason, withdrawn),
  with their own name.
- Staff (host, co-hosts, moderators, admins): everything but withdrawn questions, real authors.
- Whoever blocks a user: none of that user's questions (:func:`hidden_by_block`), staff too.

``voted`` is the viewer's own vote: it is in full lists and acks, never in broadcast deltas (a
delta goes to many people at once); clients keep their own votes between full lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from liveroom.qa.model import Board, QaLimits, Question, QuestionStatus, Sort, ranked

PUBLIC = frozenset({QuestionStatus.APPROVED, QuestionStatus.ANSWERED})
NO_BLOCKS: Mapping[str, int] = MappingProxyType({})


def hidden_by_block(question: Question, blocked: Mapping[str, int], staff: bool) -> bool:
    """Whether a viewer who blocks the users in ``blocked`` (id → when, epoch ms) does not see
    ``question``.

    Its author is blocked: it is hidden — except an anonymous question from a viewer who does
    not see authors. Hiding it would name its author: block a suspect and see which questions go,
    or unblock them and see which come back. Staff see authors anyway.
    """
    if question.author.id not in blocked:
        return False
    return staff or not question.anonymous


def visible(question: Question, viewer_id: str | None, staff: bool) -> bool:
    if question.author.id == viewer_id:
        return True
    if staff:
        return question.status is not QuestionStatus.WITHDRAWN
    return question.status in PUBLIC


def question_view(
    question: Question, viewer_id: str | None, staff: bool, voted: bool | None = None
) -> dict[str, Any]:
    """PROTOCOL.md's Question for this viewer (``voted`` left out when not given)."""
    shows_author = not question.anonymous or staff or question.author.id == viewer_id
    author = question.author
    view: dict[str, Any] = {
        "id": question.id,
        "room_id": question.room_id,
        "text": question.text,
        "author": (
            {"id": author.id, "name": author.name, "verified": author.verified}
            if shows_author
            else None
        ),
        "anonymous": question.anonymous,
        "status": question.status.value,
        "votes": question.votes,
        "created_at": question.created_at,
        "answered_at": question.answered_at,
        "pinned": question.pinned,
    }
    if voted is not None:
        view["voted"] = voted
    if question.reason is not None and (staff or question.author.id == viewer_id):
        view["reason"] = question.reason
    return view


def full_list(
    board: Board,
    viewer_id: str,
    staff: bool,
    sort: Sort,
    now_ms: int,
    limits: QaLimits,
    blocked: Mapping[str, int] = NO_BLOCKS,
) -> dict[str, Any]:
    """``{questions, pinned, version}``: the pinned one apart; then approved questions in
    ``sort`` order, answered ones (latest first), and what only this viewer may see (pending and
    rejected: oldest first). Without the questions of users the viewer blocks."""
    seen = [
        q
        for q in board.questions.values()
        if visible(q, viewer_id, staff) and not hidden_by_block(q, blocked, staff)
    ]

    def view(q: Question) -> dict[str, Any]:
        return question_view(q, viewer_id, staff, board.voted(q.id, viewer_id))

    pinned = next((q for q in seen if q.pinned), None)
    approved = [q for q in seen if q.status is QuestionStatus.APPROVED and not q.pinned]
    answered = sorted(
        (q for q in seen if q.status is QuestionStatus.ANSWERED),
        key=lambda q: -(q.answered_at or 0),
    )
    rest = [q for q in seen if q.status not in PUBLIC]
    ordered = [*ranked(approved, sort, now_ms, limits), *answered, *rest]
    return {
        "questions": [view(q) for q in ordered],
        "pinned": view(pinned) if pinned else None,
        "version": board.version,
    }
