"""Socket.IO handlers of the Q&A: parse, call the Q&A service, map the result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import Field

from liveroom.auth import Identity
from liveroom.permissions import Scope
from liveroom.qa import model
from liveroom.qa.service import QaService
from liveroom.rooms.service import RoomService
from liveroom.signaling.payloads import Payload
from liveroom.signaling.registry import Ack, EventContext, EventRegistry, Subject
from liveroom.signaling.rooms import RoomRef

QuestionId = Field(min_length=1, max_length=64)


class Ask(RoomRef):
    # Counted in code points after trimming by the model (limit configurable); this bounds the
    # frame before that.
    text: str = Field(min_length=1, max_length=2000)
    anonymous: bool = False


class ListPayload(RoomRef):
    sort: Literal["hot", "top", "new"] = "hot"


class QuestionRef(Payload):
    question_id: str = QuestionId


class RejectPayload(QuestionRef):
    reason: str | None = Field(default=None, max_length=500)


def register(registry: EventRegistry, rooms: RoomService, qa: QaService) -> None:
    async def resolve(identity: Identity, payload: Payload) -> Subject:
        assert isinstance(payload, QuestionRef)
        room_id = await qa.room_of(payload.question_id)
        return Subject(await rooms.standing(identity, room_id))

    registry.resolve_with(Scope.QUESTION, resolve)

    async def ask(ctx: EventContext, p: Ask) -> Ack:
        return await qa.ask(ctx.identity, p.room_id, p.text, p.anonymous, ctx.remote)

    async def listing(ctx: EventContext, p: ListPayload) -> Ack:
        return await qa.listing(ctx.identity, p.room_id, model.Sort(p.sort))

    async def reject(ctx: EventContext, p: RejectPayload) -> Ack:
        reason = " ".join(p.reason.split()) if p.reason else None
        return await qa.act(
            ctx.identity, p.question_id, model.Reject(p.question_id, reason or None)
        )

    async def bring(ctx: EventContext, p: QuestionRef) -> Ack:
        # Where the author stands is filled in by the service.
        command = model.BringToStage(p.question_id)
        return await qa.act(ctx.identity, p.question_id, command)

    def simple(event: str, make: Callable[[str], model.Command], limit: str | None = None) -> None:
        async def run(ctx: EventContext, p: QuestionRef) -> Ack:
            return await qa.act(ctx.identity, p.question_id, make(p.question_id))

        registry.add(event, QuestionRef, run, limit=limit)

    registry.add("qa:ask", Ask, ask)
    registry.add("qa:list", ListPayload, listing)
    registry.add("qa:reject", RejectPayload, reject)
    registry.add("qa:bring_to_stage", QuestionRef, bring)
    simple("qa:vote", lambda q: model.Vote(q, on=True), limit="votes")
    simple("qa:unvote", lambda q: model.Vote(q, on=False), limit="votes")
    simple("qa:approve", model.Approve)
    simple("qa:pin", model.Pin)
    simple("qa:answered", model.Answered)
    simple("qa:withdraw", model.Withdraw)
    simple("qa:delete", model.Delete)
