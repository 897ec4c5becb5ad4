"""Questions and votes in SQL, on SQLite and PostgreSQL: what was written is what loads back."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from liveroom.db.session import session_factory
from liveroom.qa import model
from liveroom.qa.model import Actor, Board, QaLimits
from liveroom.qa.store import SqlQaStore
from liveroom.rooms.stage import QaMode

HOST = Actor("host", "Host", True, staff=True)


async def test_every_change_loads_back_as_it_was(engine: AsyncEngine) -> None:
    store = SqlQaStore(session_factory(engine))
    board = Board("room1")

    async def run(command: model.Command, actor: Actor = HOST, now: int = 1_000) -> None:
        outcome = model.decide(board, command, actor, now, QaLimits())
        await store.write(outcome)
        board.commit(outcome)

    fans = [Actor(f"f{i}", f"Fan {i}", False, staff=False) for i in range(5)]
    await run(model.Ask("q1", "Anonymous? ✨", True, QaMode.PREMODERATED), fans[0])
    await run(model.Ask("q2", "Second", False, QaMode.OPEN), fans[1])
    await run(model.Ask("q3", "To delete", False, QaMode.OPEN), fans[2])
    await run(model.Approve("q1"))
    for fan in fans:
        await run(model.Vote("q1", True), fan)
    await run(model.Vote("q1", False), fans[4])
    await run(model.Vote("q3", True), fans[0])
    await run(model.Pin("q1"))
    await run(model.Answered("q2"), now=9_000)
    await run(model.Delete("q3"))
    other = Board("room2")
    other_q = model.decide(
        other, model.Ask("o", "Elsewhere", False, QaMode.OPEN), fans[0], 1, QaLimits()
    )
    await store.write(other_q)

    loaded = await store.load("room1")
    assert loaded.questions == {q: board.questions[q] for q in ("q1", "q2")}
    assert loaded.voters == {"q1": {"f0", "f1", "f2", "f3"}}
    assert loaded.questions["q1"].votes == 4 and loaded.questions["q1"].pinned
    assert loaded.questions["q1"].anonymous and loaded.questions["q1"].author.name == "Fan 0"
    assert loaded.questions["q2"].answered_at == 9_000
    assert await store.room_of("q2") == "room1"
    assert await store.room_of("q3") is None
