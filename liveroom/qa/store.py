"""Questions and votes in SQL: every change is committed before it is acknowledged, so all of a
room's Q&A survives a restart. One transaction per outcome."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveroom.db.models import QuestionRow, QuestionVoteRow
from liveroom.qa.model import Board, Outcome, Question, QuestionStatus
from liveroom.rooms.stage import UserInfo


def _row(q: Question) -> QuestionRow:
    return QuestionRow(
        id=q.id,
        room_id=q.room_id,
        author_id=q.author.id,
        author_name=q.author.name,
        author_verified=q.author.verified,
        text=q.text,
        anonymous=q.anonymous,
        status=q.status.value,
        votes=q.votes,
        created_at=q.created_at,
        answered_at=q.answered_at,
        reason=q.reason,
        pinned=q.pinned,
        brought=q.brought,
    )


def _question(row: QuestionRow) -> Question:
    return Question(
        id=row.id,
        room_id=row.room_id,
        author=UserInfo(row.author_id, row.author_name, row.author_verified),
        text=row.text,
        anonymous=row.anonymous,
        status=QuestionStatus(row.status),
        votes=row.votes,
        created_at=row.created_at,
        answered_at=row.answered_at,
        reason=row.reason,
        pinned=row.pinned,
        brought=row.brought,
    )


class SqlQaStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def load(self, room_id: str) -> Board:
        """A room's board as committed: its questions and who voted for each."""
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(QuestionRow)
                    .where(QuestionRow.room_id == room_id)
                    .order_by(QuestionRow.created_at, QuestionRow.id)
                )
            ).all()
            votes = (
                await session.execute(
                    select(QuestionVoteRow.question_id, QuestionVoteRow.user_id)
                    .join(QuestionRow, QuestionRow.id == QuestionVoteRow.question_id)
                    .where(QuestionRow.room_id == room_id)
                )
            ).all()
        board = Board(room_id, {row.id: _question(row) for row in rows})
        for question_id, user_id in votes:
            board.voters.setdefault(question_id, set()).add(user_id)
        return board

    async def write(self, outcome: Outcome) -> None:
        """Commit one outcome. A vote is its row plus the question's new count, together."""
        async with self._sessions.begin() as session:
            if outcome.vote is not None:
                question_id, user_id, on = outcome.vote
                if on:
                    # Idempotent: a vote whose commit was in doubt may be written again.
                    dialect = session.get_bind().dialect.name
                    insert = pg_insert if dialect == "postgresql" else sqlite_insert
                    await session.execute(
                        insert(QuestionVoteRow)
                        .values(question_id=question_id, user_id=user_id)
                        .on_conflict_do_nothing()
                    )
                else:
                    await session.execute(
                        delete(QuestionVoteRow).where(
                            QuestionVoteRow.question_id == question_id,
                            QuestionVoteRow.user_id == user_id,
                        )
                    )
            for question in outcome.changed:
                await session.merge(_row(question))
            if outcome.removed:
                ids = list(outcome.removed)
                await session.execute(
                    delete(QuestionVoteRow).where(QuestionVoteRow.question_id.in_(ids))
                )
                await session.execute(delete(QuestionRow).where(QuestionRow.id.in_(ids)))

    async def room_of(self, question_id: str) -> str | None:
        async with self._sessions() as session:
            room_id: str | None = await session.scalar(
                select(QuestionRow.room_id).where(QuestionRow.id == question_id)
            )
        return room_id

    async def questions(self, room_id: str) -> list[Question]:
        """Every question of a room, oldest first (exports, also after the room ended)."""
        return list((await self.load(room_id)).questions.values())
