"""Socket.IO handlers about the user themself: their block list."""

from __future__ import annotations

from pydantic import Field

from liveroom.blocks.service import BlockService
from liveroom.signaling.payloads import Payload
from liveroom.signaling.registry import Ack, EventContext, EventRegistry


class BlockPayload(Payload):
    user_id: str = Field(min_length=1, max_length=128)
    on: bool


class BlocksPayload(Payload):
    """``user:blocks`` takes nothing."""


def register(registry: EventRegistry, blocks: BlockService) -> None:
    async def block(ctx: EventContext, p: BlockPayload) -> Ack:
        return {"blocked": await blocks.block(ctx.identity, p.user_id, p.on)}

    async def listing(ctx: EventContext, p: BlocksPayload) -> Ack:
        return {"blocked": await blocks.listing(ctx.identity.user_id)}

    registry.add("user:block", BlockPayload, block, limit="blocks")
    registry.add("user:blocks", BlocksPayload, listing)
