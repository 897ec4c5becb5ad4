"""The Q&A of every open room: commands checked by the pure model, written to SQL before they are
acknowledged, and told to members as versioned deltas at most twice a second per room.

Deltas (``qa:update``): ``{room_id, version, since, changes, removed}``. A client whose version is
at least ``since`` applies it (question objects replace, ids in ``removed`` go); one behind
``since`` missed something and calls ``qa:list``. Each flush sends one delta to staff (all
they see), a personal one to each author whose question changed (their own view; they are left
out of the broadcast), and one broadcast to the rest of the room — only when it has something
for them. A joiner gets the full list (``full: {questions, pinned}``) after the join ack, and so
does anyone who becomes or stops being staff.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from liveroom.auth import Identity
from liveroom.clock import Clock
from liveroom.errors import LiveroomError, NotFound
from liveroom.permissions import STAFF, STAGE, Role
from liveroom.qa import model
from liveroom.qa.model import (
    Actor,
    AuthorOnStage,
    Board,
    BringToStage,
    Command,
    InviteAuthor,
    Outcome,
    QaLimits,
    Question,
    ReturnAuthor,
    Sort,
)
from liveroom.qa.store import SqlQaStore
from liveroom.qa.views import PUBLIC, full_list, question_view, visible
from liveroom.ratelimit import RateLimits
from liveroom.rooms import model as stage_model
from liveroom.rooms.fanout import AUDIENCE_INTERVAL_S, Emitter, Throttle, room_channel
from liveroom.rooms.service import RoomService, actor_of
from liveroom.rooms.stage import Demote, RoleChanged, RoomState, RoomStatus
from liveroom.tasks import KeyedLocks, Periodic, Spawned

logger = logging.getLogger(__name__)

TICK_S = 0.1


@dataclass
class Unsent:
    """What a room's members have not been told yet."""

    changed: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    was_public: set[str] = field(default_factory=set)
    """Ids the audience had seen: only those are worth a ``removed`` for them."""
    throttle: Throttle = field(default_factory=lambda: Throttle(AUDIENCE_INTERVAL_S))
    audience_sent: int = 0
    staff_sent: int = 0


class QaService:
    def __init__(
        self,
        store: SqlQaStore,
        rooms: RoomService,
        emitter: Emitter,
        limits: RateLimits,
        clock: Clock,
        config: QaLimits,
    ) -> None:
        self._store = store
        self._rooms = rooms
        self._emit = emitter
        self._limits = limits
        self._clock = clock
        self.config = config
        self._boards: dict[str, Board] = {}
        self._room_of: dict[str, str] = {}
        self._lock = KeyedLocks()
        self._unsent: dict[str, Unsent] = {}
        self._tasks = Spawned("qa")
        self._ticker = Periodic("qa-fanout", TICK_S, self.tick, clock)

    async def start(self) -> None:
        self._ticker.start()

    async def stop(self) -> None:
        await self._ticker.stop()
        await self._tasks.stop()

    # --- reading -------------------------------------------------------------------------------

    async def room_of(self, question_id: str) -> str:
        """The room a question belongs to (``NotFound`` for unknown ids)."""
        room_id = self._room_of.get(question_id)
        if room_id is None:
            room_id = await self._store.room_of(question_id)
            if room_id is None:
                raise NotFound("no such question")
        return room_id

    async def listing(self, identity: Identity, room_id: str, sort: Sort) -> dict[str, Any]:
        board = await self._board(room_id)
        staff = self._is_staff(self._rooms.state(room_id), identity)
        return full_list(board, identity.user_id, staff, sort, self._clock.now_ms(), self.config)

    async def ensure_question(self, room_id: str, question_id: str) -> None:
        """``NotFound`` unless the question is in this room (reports name questions)."""
        if await self.room_of(question_id) != room_id:
            raise NotFound("no such question in this room")

    async def export(self, room_id: str) -> list[Question]:
        return await self._store.questions(room_id)

    # --- commands ------------------------------------------------------------------------------

    async def ask(
        self, identity: Identity, room_id: str, text: str, anonymous: bool
    ) -> dict[str, Any]:
        questions = self._limits["questions"]
        state = self._rooms.state(room_id)
        command = model.Ask(secrets.token_hex(8), text, anonymous, state.settings.qa_mode)
        # A refused question (duplicate, too long) says why and costs no quota; one that would
        # be taken is held to the limit before it is written.
        outcome = await self._run(
            room_id, command, identity, lambda: questions.check(identity.user_id)
        )
        questions.hit(identity.user_id)
        return {"question": question_view(outcome.changed[0], identity.user_id, False, False)}

    async def act(self, identity: Identity, question_id: str, command: Command) -> dict[str, Any]:
        """Any command on an existing question; the ack carries the question as the actor sees
        it (absent when it was deleted)."""
        room_id = await self.room_of(question_id)
        if isinstance(command, BringToStage):
            command = self._where_author_stands(room_id, question_id, command)
        outcome = await self._run(room_id, command, identity)
        for effect in outcome.effects:
            await self._carry_out(room_id, identity, question_id, effect)
        board = self._boards.get(room_id)
        question = board.questions.get(question_id) if board else None
        if question is None:
            return {}
        staff = self._is_staff(self._rooms.state(room_id), identity)
        voted = board.voted(question_id, identity.user_id) if board else False
        return {"question": question_view(question, identity.user_id, staff, voted)}

    def _where_author_stands(
        self, room_id: str, question_id: str, command: BringToStage
    ) -> BringToStage:
        board = self._boards.get(room_id)
        question = board.questions.get(question_id) if board else None
        if question is None:
            return command  # the model says not_found
        state = self._rooms.state(room_id)
        author = question.author.id
        return BringToStage(
            question_id,
            author_present=self._rooms.presence.is_present(room_id, author),
            author_banned=self._rooms.is_banned(state, author),
            author_on_stage=stage_model.role_of(state, author) in STAGE,
        )

    async def _carry_out(
        self, room_id: str, identity: Identity, question_id: str, effect: model.Effect
    ) -> None:
        match effect:
            case InviteAuthor(user_id=user_id):
                try:
                    await self._rooms.invite(room_id, actor_of(identity), user_id, Role.SPEAKER)
                except LiveroomError:
                    # The stage refused (seats full…): the question is not "brought" after all.
                    await self._undo_bring(room_id, question_id)
                    raise
            case ReturnAuthor(user_id=user_id):
                if not self._rooms.state(room_id).settings.qa_return_to_audience:
                    return
                try:
                    await self._rooms.apply(room_id, Demote(user_id), actor_of(identity))
                except LiveroomError as e:  # they left, or rose above the answerer meanwhile
                    logger.info("not returning %s to the audience in %s: %s", user_id, room_id, e)

    async def _undo_bring(self, room_id: str, question_id: str) -> None:
        async with self._lock(room_id):
            board = await self._board(room_id)
            question = board.questions.get(question_id)
            if question is not None and question.brought:
                await self._commit(board, Outcome(changed=(replace(question, brought=False),)))

    async def _run(
        self,
        room_id: str,
        command: Command,
        identity: Identity,
        admit: Callable[[], None] | None = None,
    ) -> Outcome:
        state = self._rooms.state(room_id)
        actor = Actor(
            identity.user_id, identity.name, identity.verified, self._is_staff(state, identity)
        )
        async with self._lock(room_id):
            board = await self._board(room_id)
            outcome = model.decide(board, command, actor, self._clock.now_ms(), self.config)
            if admit is not None:
                admit()
            await self._commit(board, outcome)
        return outcome

    async def _commit(self, board: Board, outcome: Outcome) -> None:
        """Write, then make it true in memory, then owe it to the members."""
        if outcome.empty:
            return
        await self._store.write(outcome)
        unsent = self._unsent.setdefault(
            board.room_id, Unsent(audience_sent=board.version, staff_sent=board.version)
        )
        for question in outcome.changed:
            old = board.questions.get(question.id)
            if old is not None and old.status in PUBLIC:
                unsent.was_public.add(question.id)
            unsent.changed.add(question.id)
            self._room_of[question.id] = board.room_id
        for question_id in outcome.removed:
            old = board.questions.get(question_id)
            if old is not None and old.status in PUBLIC:
                unsent.was_public.add(question_id)
            unsent.removed.add(question_id)
            unsent.changed.discard(question_id)
        board.commit(outcome)
        unsent.throttle.owed = True

    # --- the stage tells us --------------------------------------------------------------------

    def room_opened(self, state: RoomState) -> None:
        pass

    async def member_left(self, room_id: str, user_id: str) -> None:
        pass

    async def stage_changed(self, state: RoomState, events: Iterable[Any]) -> None:
        if state.status is RoomStatus.ENDED:
            self._forget(state.id)
            return
        for event in events:
            if not isinstance(event, RoleChanged):
                continue
            if event.new_role in STAGE and state.id in self._boards:
                self._tasks.spawn(self._author_on_stage(state.id, event.user_id))
            if (event.old_role in STAFF) != (event.new_role in STAFF):
                for sid in self._rooms.presence.sids_of(state.id, event.user_id):
                    self._tasks.spawn(self._send_full(sid, state.id, event.user_id))

    async def _author_on_stage(self, room_id: str, user_id: str) -> None:
        async with self._lock(room_id):
            board = self._boards.get(room_id)
            if board is not None:
                await self._commit(board, model.on_stage(board, AuthorOnStage(user_id)))

    # --- joining -------------------------------------------------------------------------------

    def joined(self, sid: str, identity: Identity, room_id: str) -> None:
        """After the join ack: the full list for this socket."""
        self._tasks.spawn(self._send_full(sid, room_id, identity.user_id, identity.grants.admin))

    async def _send_full(self, sid: str, room_id: str, user_id: str, admin: bool = False) -> None:
        state = self._rooms.state(room_id)
        board = await self._board(room_id)
        staff = admin or stage_model.role_of(state, user_id) in STAFF
        listing = full_list(board, user_id, staff, Sort.HOT, self._clock.now_ms(), self.config)
        payload = {
            "room_id": room_id,
            "version": listing.pop("version"),
            "full": listing,
        }
        await self._emit.emit("qa:update", payload, to=sid)

    # --- fan-out -------------------------------------------------------------------------------

    async def tick(self) -> None:
        now = self._clock.monotonic()
        for room_id, unsent in list(self._unsent.items()):
            if unsent.throttle.take_due(now):
                try:
                    await self._flush(room_id, unsent)
                except Exception:
                    logger.exception("Q&A fan-out failed in room %s", room_id)

    async def _flush(self, room_id: str, unsent: Unsent) -> None:
        board = self._boards.get(room_id)
        state = self._rooms.get(room_id)
        if board is None or state is None:
            self._unsent.pop(room_id, None)
            return
        changed = [board.questions[i] for i in sorted(unsent.changed) if i in board.questions]
        removed = sorted(unsent.removed)
        was_public = set(unsent.was_public)
        unsent.changed.clear()
        unsent.removed.clear()
        unsent.was_public.clear()
        version = board.version
        presence = self._rooms.presence
        staff_ids = set(self._rooms.staff_ids(state))
        staff_sids = [sid for u in staff_ids for sid in presence.sids_of(room_id, u)]

        def delta(since: int, changes: list[dict[str, Any]], gone: list[str]) -> dict[str, Any]:
            return {
                "room_id": room_id,
                "version": version,
                "since": since,
                "changes": changes,
                "removed": gone,
            }

        staff_changes = [question_view(q, None, True) for q in changed if visible(q, None, True)]
        staff_gone = removed + [q.id for q in changed if not visible(q, None, True)]
        if staff_sids and (staff_changes or staff_gone):
            message = delta(unsent.staff_sent, staff_changes, staff_gone)
            for sid in staff_sids:
                await self._emit.emit("qa:update", message, to=sid)
        unsent.staff_sent = version

        public = [q for q in changed if q.status in PUBLIC]
        audience_gone = [
            i
            for i in removed + [q.id for q in changed if q.status not in PUBLIC]
            if i in was_public
        ]
        skip = list(staff_sids)
        for author in sorted({q.author.id for q in changed} - staff_ids):
            sids = presence.sids_of(room_id, author)
            if not sids:
                continue
            skip.extend(sids)
            mine = [q for q in changed if visible(q, author, False)]
            message = delta(
                unsent.audience_sent,
                [question_view(q, author, False) for q in mine],
                audience_gone + [q.id for q in changed if not visible(q, author, False)],
            )
            for sid in sids:
                await self._emit.emit("qa:update", message, to=sid)
        if public or audience_gone:
            message = delta(
                unsent.audience_sent,
                [question_view(q, None, False) for q in public],
                audience_gone,
            )
            await self._emit.emit("qa:update", message, room=room_channel(room_id), skip_sid=skip)
            unsent.audience_sent = version

    # --- housekeeping --------------------------------------------------------------------------

    async def _board(self, room_id: str) -> Board:
        board = self._boards.get(room_id)
        if board is None:
            board = await self._store.load(room_id)
            # Another load may have finished while this one read: keep the first.
            board = self._boards.setdefault(room_id, board)
            for question_id in board.questions:
                self._room_of[question_id] = room_id
        return board

    def _is_staff(self, state: RoomState, identity: Identity) -> bool:
        return identity.grants.admin or stage_model.role_of(state, identity.user_id) in STAFF

    def _forget(self, room_id: str) -> None:
        board = self._boards.pop(room_id, None)
        for question_id in board.questions if board else ():
            self._room_of.pop(question_id, None)
        self._unsent.pop(room_id, None)
        self._lock.drop(room_id)
