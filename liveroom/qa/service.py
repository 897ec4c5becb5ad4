"""The Q&A of every open room: commands checked by the pure model, written to SQL before they are
acknowledged, and told to members as versioned deltas at most twice a second per room.

Deltas (``qa:update``): ``{room_id, version, since, changes, removed}``. A client ignores a delta
whose version is not above its own; one whose version is at least ``since`` applies it
(question objects replace, ids in ``removed`` go); one behind ``since`` missed something and
calls ``qa:list``. Each flush sends one delta to staff (all they see), a personal one to each
author whose question changed or went (their own view; they are left out of the broadcast),
and one broadcast to the rest of the room — only when something public changed. A joiner gets
the full list (``full: {questions, pinned}``) after the join ack, and so does anyone who becomes
or stops being staff, or blocks or unblocks someone.

Blocks: a member present who blocks the author of a question that changed gets the message they
would have had without that question (and is left out of the broadcast). Only they cost a
message of their own, and only in a flush with such a change.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from liveroom.auth import Identity
from liveroom.blocks.model import BlockIndex, BlockLookup
from liveroom.clock import Clock
from liveroom.errors import Gone, LiveroomError, NotFound
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
from liveroom.qa.views import (
    NO_BLOCKS,
    PUBLIC,
    full_list,
    hidden_by_block,
    question_view,
    visible,
)
from liveroom.ratelimit import RateLimits
from liveroom.rooms import model as stage_model
from liveroom.rooms.fanout import AUDIENCE_INTERVAL_S, Emitter, Throttle, room_channel
from liveroom.rooms.service import RoomService, actor_of
from liveroom.rooms.stage import Demote, RoleChanged, RoomState, RoomStatus, StageChanged
from liveroom.tasks import KeyedLocks, Periodic, Spawned

logger = logging.getLogger(__name__)

TICK_S = 0.1


@dataclass
class Unsent:
    """What a room's members have not been told yet, and what the audience was told last."""

    public: set[str]
    """Ids public at the last flush: only those are worth a ``removed`` for the audience."""
    changed: set[str] = field(default_factory=set)
    removed: dict[str, str] = field(default_factory=dict)
    """Deleted ids, with their authors (who are told even if nobody else saw the question)."""
    throttle: Throttle = field(default_factory=lambda: Throttle(AUDIENCE_INTERVAL_S))
    audience_sent: int = 0
    staff_sent: int = 0


def _public_ids(board: Board) -> set[str]:
    return {q.id for q in board.questions.values() if q.status in PUBLIC}


class QaService:
    def __init__(
        self,
        store: SqlQaStore,
        rooms: RoomService,
        emitter: Emitter,
        limits: RateLimits,
        clock: Clock,
        config: QaLimits,
        blocks: BlockLookup | None = None,
    ) -> None:
        self._store = store
        self._rooms = rooms
        self._emit = emitter
        self._limits = limits
        self._clock = clock
        self.config = config
        self._blocks: BlockLookup = blocks if blocks is not None else BlockIndex()
        self._boards: dict[str, Board] = {}
        self._room_of: dict[str, str] = {}
        self._versions: dict[str, int] = {}
        """The version of each board evicted after a failed write: a reload continues from it."""
        self._lock = KeyedLocks()
        self._unsent: dict[str, Unsent] = {}
        self._tasks = Spawned("qa")
        self._ticker = Periodic("qa-fanout", TICK_S, self.tick, clock)
        self.asked: list[Callable[[Question], None]] = []
        """Told of each question once it is written (webhooks); must not wait."""

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
        state = self._rooms.state(room_id)
        board = await self._board(room_id)
        return full_list(
            board,
            identity.user_id,
            self._is_staff(state, identity.user_id, identity.grants.admin),
            sort,
            self._clock.now_ms(),
            self.config,
            self._blocks.blocked_by(identity.user_id),
        )

    async def ensure_question(self, room_id: str, question_id: str) -> None:
        """``NotFound`` unless the question is in this room (reports name questions)."""
        if await self.room_of(question_id) != room_id:
            raise NotFound("no such question in this room")

    async def export(self, room_id: str, blocked: Mapping[str, int] = NO_BLOCKS) -> list[Question]:
        """Every question of the room (staff: real authors), less those of users in ``blocked``
        — whom the one exporting blocks."""
        questions = await self._store.questions(room_id)
        return [q for q in questions if not hidden_by_block(q, blocked, True)]

    # --- commands ------------------------------------------------------------------------------

    async def ask(
        self, identity: Identity, room_id: str, text: str, anonymous: bool, remote: str | None
    ) -> dict[str, Any]:
        state = self._rooms.state(room_id)
        command = model.Ask(secrets.token_hex(8), text, anonymous, state.settings.qa_mode)
        # A refused question (duplicate, too long) says why and costs no quota; one that would
        # be taken is charged before it is written, so nothing is refused after it was saved.
        outcome = await self._run(
            room_id,
            command,
            identity,
            lambda: self._limits.charge("questions", identity.user_id, remote),
        )
        question = outcome.changed[0]
        for hook in self.asked:
            try:
                hook(question)
            except Exception:  # the question is saved: a hook's trouble must not refuse it
                logger.exception(
                    "a question hook failed in room %s", room_id, extra={"room_id": room_id}
                )
        return {"question": question_view(question, identity.user_id, False, False)}

    async def act(self, identity: Identity, question_id: str, command: Command) -> dict[str, Any]:
        """Any command on an existing question; the ack carries the question as the actor sees
        it (absent when it was deleted)."""
        room_id = await self.room_of(question_id)
        if isinstance(command, BringToStage):
            command = self._where_author_stands(room_id, question_id)
        outcome = await self._run(room_id, command, identity)
        for effect in outcome.effects:
            await self._carry_out(room_id, identity, question_id, effect)
        # From here on nothing may refuse: the change is committed.
        board = self._boards.get(room_id)
        question = board.questions.get(question_id) if board else None
        if board is None or question is None:
            return {}
        state = self._rooms.get(room_id)
        staff = identity.grants.admin or (
            state is not None and stage_model.role_of(state, identity.user_id) in STAFF
        )
        voted = board.voted(question_id, identity.user_id)
        return {"question": question_view(question, identity.user_id, staff, voted)}

    def _where_author_stands(self, room_id: str, question_id: str) -> BringToStage:
        board = self._boards.get(room_id)
        question = board.questions.get(question_id) if board else None
        if question is None:
            return BringToStage(question_id)  # the model says not_found
        state = self._rooms.state(room_id)
        author = question.author.id
        present = self._rooms.presence.is_present(room_id, author)
        role = (stage_model.role_of(state, author) or Role.LISTENER) if present else None
        return BringToStage(question_id, self._rooms.is_banned(state, author), role)

    async def _carry_out(
        self, room_id: str, identity: Identity, question_id: str, effect: model.Effect
    ) -> None:
        match effect:
            case InviteAuthor(user_id=user_id):
                try:
                    await self._rooms.invite(room_id, actor_of(identity), user_id, Role.SPEAKER)
                except LiveroomError:
                    # The stage refused (seats full…): the question is not waiting after all.
                    await self._update(room_id, lambda board: model.not_invited(board, user_id))
                    raise
            case ReturnAuthor(user_id=user_id):
                state = self._rooms.get(room_id)
                if state is None or not state.settings.qa_return_to_audience:
                    return
                if stage_model.role_of(state, user_id) is not Role.SPEAKER:
                    return  # promoted meanwhile: the Q&A only sends back whom it brought up
                try:
                    await self._rooms.apply(room_id, Demote(user_id), actor_of(identity))
                except LiveroomError as e:  # they left meanwhile
                    logger.info("not returning %s to the audience in %s: %s", user_id, room_id, e)

    async def _run(
        self,
        room_id: str,
        command: Command,
        identity: Identity,
        admit: Callable[[], None] | None = None,
    ) -> Outcome:
        async with self._lock(room_id):
            state = self._rooms.state(room_id)  # under the lock: not for a room that just ended
            board = await self._board(room_id)
            actor = Actor(
                identity.user_id,
                identity.name,
                identity.verified,
                self._is_staff(state, identity.user_id, identity.grants.admin),
            )
            outcome = model.decide(board, command, actor, self._clock.now_ms(), self.config)
            if admit is not None:
                admit()
            await self._commit(board, outcome)
        return outcome

    async def _update(self, room_id: str, change: Callable[[Board], Outcome]) -> None:
        """A change the server makes by itself (the stage told it something)."""
        async with self._lock(room_id):
            board = self._boards.get(room_id)
            if board is not None and self._rooms.get(room_id) is not None:
                await self._commit(board, change(board))

    async def _commit(self, board: Board, outcome: Outcome) -> None:
        """Write, then make it true in memory, then owe it to the members."""
        if outcome.empty:
            return
        try:
            await self._store.write(outcome)
        except BaseException:
            # Did it commit? Unknown: forget the board, reload it from SQL on next use, and
            # have every member fetch the list again.
            self._evict(board)
            raise
        unsent = self._unsent.get(board.room_id)
        if unsent is None:
            unsent = self._unsent[board.room_id] = Unsent(
                _public_ids(board), audience_sent=board.version, staff_sent=board.version
            )
        for question in outcome.changed:
            unsent.changed.add(question.id)
            self._room_of[question.id] = board.room_id
        for question_id in outcome.removed:
            unsent.removed[question_id] = board.get(question_id).author.id
            unsent.changed.discard(question_id)
            self._room_of.pop(question_id, None)
        board.commit(outcome)
        unsent.throttle.owed = True

    def _evict(self, board: Board) -> None:
        room_id = board.room_id
        self._boards.pop(room_id, None)
        self._unsent.pop(room_id, None)
        version = self._versions[room_id] = board.version + 1
        # A delta nobody can apply (since > version): every client asks qa:list.
        resync = {"room_id": room_id, "version": version, "since": version + 1}
        self._tasks.spawn(
            self._emit.emit(
                "qa:update", {**resync, "changes": [], "removed": []}, room=room_channel(room_id)
            )
        )

    # --- the stage tells us --------------------------------------------------------------------

    def room_opened(self, state: RoomState) -> None:
        pass

    async def member_left(self, room_id: str, user_id: str) -> None:
        pass

    async def stage_changed(self, state: RoomState, events: Iterable[Any]) -> None:
        if state.status is RoomStatus.ENDED:
            self.forget(state.id)
            return
        loaded = state.id in self._boards
        invited = {i.user_id for i in state.invites}
        for event in events:
            if isinstance(event, RoleChanged):
                if loaded and event.new_role in STAGE:
                    news = AuthorOnStage(event.user_id)
                    self._tasks.spawn(self._update(state.id, partial(model.on_stage, news=news)))
                if (event.old_role in STAFF) != (event.new_role in STAFF):
                    admin = event.user_id in self._rooms.presence.admins(state.id)
                    for sid in self._rooms.presence.sids_of(state.id, event.user_id):
                        self._tasks.spawn(
                            self._send_full(sid, state.id, event.user_id, admin=admin)
                        )
            elif isinstance(event, StageChanged) and loaded:
                for user_id in event.users:
                    if user_id not in invited and stage_model.role_of(state, user_id) not in STAGE:
                        waiting = partial(model.not_invited, user_id=user_id)
                        self._tasks.spawn(self._update(state.id, waiting))

    # --- joining -------------------------------------------------------------------------------

    def joined(self, sid: str, identity: Identity, room_id: str) -> None:
        """After the join ack: the full list for this socket."""
        self._tasks.spawn(
            self._send_full(sid, room_id, identity.user_id, admin=identity.grants.admin)
        )

    async def viewer_changed(self, identity: Identity, sids: set[str]) -> None:
        """The user blocked or unblocked someone: their full list again, in every room each of
        their sockets is in."""
        for sid in sids:
            for room_id in self._rooms.presence.rooms_of(sid):
                try:
                    await self._send_full(
                        sid, room_id, identity.user_id, admin=identity.grants.admin
                    )
                except LiveroomError:  # the room ended meanwhile
                    continue

    async def _send_full(
        self, sid: str, room_id: str, user_id: str, *, admin: bool = False
    ) -> None:
        state = self._rooms.state(room_id)
        board = await self._board(room_id)
        staff = self._is_staff(state, user_id, admin)
        now = self._clock.now_ms()
        blocked = self._blocks.blocked_by(user_id)
        listing = full_list(board, user_id, staff, Sort.HOT, now, self.config, blocked)
        payload = {
            "room_id": room_id,
            "version": listing.pop("version"),
            "full": listing,
            "max_chars": self.config.max_chars,
            "gravity": self.config.gravity,
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
                    unsent.throttle.owed = True  # what was not sent stays owed
                    logger.exception(
                        "Q&A fan-out failed in room %s", room_id, extra={"room_id": room_id}
                    )
        # Rooms that ended (or were never opened) keep nothing here.
        open_ids = {room_id for room_id in self._boards if self._rooms.get(room_id) is not None}
        for room_id in [r for r in self._boards if r not in open_ids]:
            self.forget(room_id)
        self._lock.retain(open_ids)

    async def _flush(self, room_id: str, unsent: Unsent) -> None:
        board = self._boards.get(room_id)
        state = self._rooms.get(room_id)
        if board is None or state is None:
            self._unsent.pop(room_id, None)
            return
        # Taken out now; put back if sending fails. Changes made while this sends are owed anew.
        taken, unsent.changed = unsent.changed, set()
        removed, unsent.removed = unsent.removed, {}
        try:
            await self._send(room_id, board, state, unsent, taken, removed)
        except BaseException:
            unsent.changed |= taken
            unsent.removed = {**removed, **unsent.removed}
            raise

    async def _send(
        self,
        room_id: str,
        board: Board,
        state: RoomState,
        unsent: Unsent,
        taken: set[str],
        removed: dict[str, str],
    ) -> None:
        changed = [board.questions[i] for i in sorted(taken) if i in board.questions]
        version = board.version
        public_now = _public_ids(board)
        presence = self._rooms.presence
        staff_ids = set(self._rooms.staff_ids(state))
        staff_sids = [sid for u in staff_ids for sid in presence.sids_of(room_id, u)]
        hidden = self._hidden_from(room_id, changed, staff_ids)

        def delta(since: int, changes: list[dict[str, Any]], gone: list[str]) -> dict[str, Any]:
            return {
                "room_id": room_id,
                "version": version,
                "since": since,
                "changes": changes,
                "removed": gone,
            }

        # Staff: everything they see.
        staff_changes = [question_view(q, None, True) for q in changed if visible(q, None, True)]
        staff_gone = sorted(removed) + [q.id for q in changed if not visible(q, None, True)]
        staff_message = delta(unsent.staff_sent, staff_changes, staff_gone)
        # The audience: public questions; removals only of what it had been shown.
        public = [q for q in changed if q.status in PUBLIC]
        audience_gone = sorted(
            i
            for i in (*removed, *(q.id for q in changed))
            if i in unsent.public and i not in public_now
        )
        # Authors: the audience's delta in their own view, plus their own questions.
        authors = ({q.author.id for q in changed} | set(removed.values())) - staff_ids
        personal: list[tuple[set[str], dict[str, Any]]] = []
        for author in sorted(authors):
            sids = presence.sids_of(room_id, author)
            if not sids:
                continue
            mine = [q for q in changed if visible(q, author, False)]
            own_gone = [i for i, a in removed.items() if a == author and i not in audience_gone]
            not_shown = [
                q.id for q in changed if q.author.id == author and not visible(q, author, False)
            ]
            message = delta(
                unsent.audience_sent,
                [question_view(q, author, False) for q in mine],
                audience_gone + own_gone + not_shown,
            )
            personal.append((sids, _without(message, hidden.get(author))))

        if staff_sids and (staff_changes or staff_gone):
            for user_id in staff_ids:
                message = _without(staff_message, hidden.get(user_id))
                for sid in presence.sids_of(room_id, user_id):
                    await self._emit.emit("qa:update", message, to=sid)
        skip = list(staff_sids)
        for sids, message in personal:
            skip.extend(sids)
            for sid in sids:
                await self._emit.emit("qa:update", message, to=sid)
        broadcast = bool(public or audience_gone)
        if broadcast:
            message = delta(
                unsent.audience_sent, [question_view(q, None, False) for q in public], audience_gone
            )
            # Blockers in the audience: the broadcast without what they hid, each apart.
            for user_id, ids in hidden.items():
                if user_id in staff_ids or user_id in authors:
                    continue
                own = _without(message, ids)
                for sid in presence.sids_of(room_id, user_id):
                    skip.append(sid)
                    await self._emit.emit("qa:update", own, to=sid)
            await self._emit.emit("qa:update", message, room=room_channel(room_id), skip_sid=skip)
        unsent.public = public_now
        unsent.staff_sent = version
        if broadcast or personal:
            unsent.audience_sent = version

    def _hidden_from(
        self, room_id: str, changed: list[Question], staff_ids: set[str]
    ) -> dict[str, set[str]]:
        """Members present who block the author of a changed question: the ids of the changed
        questions each of them does not see. Found from the authors, so it costs nothing in a
        room where nobody blocks them."""
        presence = self._rooms.presence
        viewers = {
            blocker
            for author in {q.author.id for q in changed}
            for blocker in self._blocks.blockers_of(author)
            if presence.is_present(room_id, blocker)
        }
        hidden: dict[str, set[str]] = {}
        for viewer in viewers:
            blocked = self._blocks.blocked_by(viewer)
            staff = viewer in staff_ids
            ids = {q.id for q in changed if hidden_by_block(q, blocked, staff)}
            if ids:
                hidden[viewer] = ids
        return hidden

    # --- housekeeping --------------------------------------------------------------------------

    async def _board(self, room_id: str) -> Board:
        board = self._boards.get(room_id)
        if board is None:
            loaded = await self._store.load(room_id)
            if self._rooms.get(room_id) is None:
                raise Gone("the room has ended")  # ended while loading: keep nothing
            loaded.version = max(loaded.version, self._versions.pop(room_id, 0))
            # Another load may have finished while this one read: keep the first.
            board = self._boards.setdefault(room_id, loaded)
            for question_id in board.questions:
                self._room_of[question_id] = room_id
        return board

    def _is_staff(self, state: RoomState, user_id: str, admin: bool) -> bool:
        return admin or user_id in self._rooms.staff_ids(state)

    def forget(self, room_id: str) -> None:
        """Drop what is held of the room: it is over, or no longer runs on this node."""
        board = self._boards.pop(room_id, None)
        for question_id in board.questions if board else ():
            self._room_of.pop(question_id, None)
        self._unsent.pop(room_id, None)
        self._versions.pop(room_id, None)


def _without(message: dict[str, Any], ids: set[str] | None) -> dict[str, Any]:
    """A delta without the changed questions ``ids`` (a blocker's copy)."""
    if not ids:
        return message
    return {**message, "changes": [c for c in message["changes"] if c["id"] not in ids]}
