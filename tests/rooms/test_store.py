"""What survives a restart, on SQLite and PostgreSQL: rooms with their roles, bans, reminders and
the audit log (:class:`SqlRoomStore`), and participation history written in batches
(:class:`ParticipationLog`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from liveroom.db.session import session_factory
from liveroom.permissions import Role
from liveroom.rooms.model import apply, new_room, role_of
from liveroom.rooms.participation import ParticipationLog
from liveroom.rooms.stage import (
    SERVER,
    Accept,
    Actor,
    Approve,
    AuditAction,
    Audited,
    Away,
    Command,
    Demote,
    EndRoom,
    Expire,
    Invite,
    Join,
    Mute,
    OnHostLeave,
    QaMode,
    RaiseHand,
    Remove,
    Removed,
    RoomSettings,
    RoomState,
    RoomStatus,
    StaffAssignment,
    Unmute,
    UpdateRoom,
    UserInfo,
)
from liveroom.rooms.store import SqlRoomStore, restored
from tests.fakes import START_MS, FakeClock, eventually

ARTIST = UserInfo("artist", "Artist", verified=True)
ANA = UserInfo("ana", "Ana")
BO = UserInfo("bo", "Bo")
CY = UserInfo("cy", "Cy")
EVE = UserInfo("eve", "Eve", verified=True)
TROLL = UserInfo("troll", "Troll")


@pytest.fixture
def store(engine: AsyncEngine) -> SqlRoomStore:
    return SqlRoomStore(session_factory(engine))


def _actor(user: UserInfo) -> Actor:
    return Actor(user.id, user.name, user.verified)


async def _run(
    store: SqlRoomStore, state: RoomState, command: Command, who: UserInfo, now_ms: int
) -> RoomState:
    """Apply ``command`` and write the result as the room service does: the room, the bans it
    made and its audit entries, in one save."""
    new, events = apply(state, command, _actor(who), now_ms)
    bans = [(e.user_id, who.id) for e in events if isinstance(e, Removed) and e.ban]
    audit = [e for e in events if isinstance(e, Audited)]
    await store.save(new, new_bans=bans, audit=audit, now_ms=now_ms)
    return new


async def _busy_room(store: SqlRoomStore) -> RoomState:
    """A live room with every kind of role: co-hosts (invited, and pre-assigned who joined), a
    moderator, a speaker, a pre-assigned moderator who has not come yet, changed settings and
    two bans."""
    now = START_MS
    state = new_room(
        "busy",
        ARTIST,
        now,
        title="Comeback night",
        topics=("kpop", "live"),
        market="KR",
        settings=RoomSettings(qa_mode=QaMode.OPEN, on_host_leave=OnHostLeave.END),
        staff=(StaffAssignment("eve", Role.COHOST), StaffAssignment("dee", Role.MODERATOR)),
    )
    await store.save(state, now_ms=now)
    steps: list[tuple[Command, UserInfo]] = [
        (Invite("ana", Role.COHOST, ANA), ARTIST),
        (Accept(), ANA),
        (Join(), EVE),
        (RaiseHand(), BO),
        (Approve("bo"), ARTIST),
        (Invite("cy", Role.MODERATOR, CY), ARTIST),
        (Accept(), CY),
        (RaiseHand(), TROLL),
        (Remove("troll", ban=True), ARTIST),
        (Remove("spammer", ban=True), CY),
        (UpdateRoom(title="Comeback night, encore", recording=False), ARTIST),
    ]
    for command, who in steps:
        now += 1000
        state = await _run(store, state, command, who, now)
    return state


async def test_an_open_room_comes_back_with_its_roles_settings_people_and_bans(
    store: SqlRoomStore,
) -> None:
    state = await _busy_room(store)
    assert state.cohosts == ("ana", "eve")  # the room really has what is checked below
    assert state.banned == {"troll", "spammer"}

    [back] = await store.open_rooms()

    assert back.cohosts == ("ana", "eve")
    assert back.moderators == ("cy",)
    assert back.speakers == ("bo",)
    assert back.staff_assignments == (
        StaffAssignment("eve", Role.COHOST),
        StaffAssignment("dee", Role.MODERATOR),
    )
    assert back.settings == RoomSettings(
        qa_mode=QaMode.OPEN, recording=False, on_host_leave=OnHostLeave.END
    )
    assert back.people == (ARTIST, ANA, EVE, BO, CY)  # names and badges of the seated
    assert back.banned == {"troll", "spammer"}
    assert back.title == "Comeback night, encore"
    # Everything else written comes back as it was; mutes, hands and invitations are live only.
    assert back == replace(state, muted=frozenset(), version=0)


async def test_rooms_are_read_back_by_status(store: SqlRoomStore) -> None:
    live = new_room("live", ARTIST, START_MS, title="On air", topics=("ballads",))
    later = new_room("later", ARTIST, START_MS, title="Tomorrow", scheduled_for=START_MS + 1)
    for state in (live, later):
        await store.save(state, now_ms=START_MS)
    ended: dict[str, RoomState] = {}
    for room_id, after_ms in {"first": 10_000, "third": 30_000, "second": 20_000}.items():
        state = new_room(room_id, ARTIST, START_MS, title=room_id)
        await store.save(state, now_ms=START_MS)
        ended[room_id] = await _run(store, state, EndRoom(), ARTIST, START_MS + after_ms)

    # What a restarting server rebuilds: live and scheduled rooms only.
    open_rooms = {r.id: r for r in await store.open_rooms()}
    assert set(open_rooms) == {"live", "later"}
    assert open_rooms["later"].status is RoomStatus.SCHEDULED
    assert open_rooms["later"].scheduled_for == START_MS + 1
    assert open_rooms["live"].started_at == START_MS

    # The "ended" listing: newest first, as many as asked for.
    assert [r.id for r in await store.ended(10)] == ["third", "second", "first"]
    assert [r.id for r in await store.ended(2)] == ["third", "second"]

    # One room, whatever its status.
    got = await store.get("second")
    assert got is not None
    assert (got.status, got.ended_at) == (RoomStatus.ENDED, START_MS + 20_000)
    assert got == replace(ended["second"], version=0)
    assert await store.get("live") == replace(live, muted=frozenset())  # mutes are live only
    assert await store.get("no-such-room") is None


async def test_reminders_are_on_or_off_per_user_and_room(store: SqlRoomStore) -> None:
    for room_id in ("premiere", "other"):
        room = new_room(room_id, ARTIST, START_MS, title=room_id, scheduled_for=START_MS + 1)
        await store.save(room, now_ms=START_MS)

    await store.set_reminder("premiere", "ana", True, START_MS)
    await store.set_reminder("premiere", "ana", True, START_MS + 1)  # a double tap
    await store.set_reminder("premiere", "bo", True, START_MS)
    await store.set_reminder("premiere", "cy", True, START_MS)
    await store.set_reminder("premiere", "bo", False, START_MS)
    await store.set_reminder("premiere", "bo", False, START_MS)  # already off
    await store.set_reminder("premiere", "never", False, START_MS)  # never on
    await store.set_reminder("other", "eve", True, START_MS)

    assert sorted(await store.reminded("premiere")) == ["ana", "cy"]
    assert await store.reminded("other") == ["eve"]
    assert await store.reminded("unknown") == []


async def test_audit_entries_come_back_in_order(store: SqlRoomStore) -> None:
    state = new_room("r1", ARTIST, START_MS, title="Moderated")
    await store.save(state, now_ms=START_MS)
    steps: list[tuple[Command, UserInfo]] = [
        (Invite("ana", Role.SPEAKER, ANA), ARTIST),
        (Accept(), ANA),
        (RaiseHand(), BO),
        (Approve("bo"), ARTIST),
        (Unmute(), BO),  # a new speaker starts muted: muting them now is a real act
        (Mute("bo"), ARTIST),
        (Demote("ana"), ARTIST),
        (Remove("bo", ban=True), ARTIST),
    ]
    for i, (command, who) in enumerate(steps, start=1):
        state = await _run(store, state, command, who, START_MS + i)
    other = new_room("r2", ARTIST, START_MS, title="Elsewhere")
    await store.save(other, audit=[Audited(AuditAction.END, "artist", None)], now_ms=START_MS)
    await store.save(
        state, audit=[Audited(AuditAction.HANDOVER, None, "ana", "x" * 600)], now_ms=START_MS + 9
    )

    log = await store.audit_log("r1")

    assert [(e.action, e.actor_id, e.target_id, e.detail, e.at) for e in log[:-1]] == [
        ("invite", "artist", "ana", "speaker", START_MS + 1),
        ("accept", "ana", "ana", "speaker", START_MS + 2),
        ("approve", "artist", "bo", "speaker", START_MS + 4),
        ("mute", "artist", "bo", "", START_MS + 6),
        ("demote", "artist", "ana", "speaker", START_MS + 7),
        ("ban", "artist", "bo", "", START_MS + 8),
    ]
    server_entry = log[-1]
    assert (server_entry.action, server_entry.actor_id) == ("handover", None)  # the server acted
    assert server_entry.detail == "x" * 500  # long details are cut, not refused
    assert [e.action for e in await store.audit_log("r2")] == ["end"]


async def test_server_bans_are_kept_once_each(store: SqlRoomStore) -> None:
    assert await store.server_bans() == set()
    await store.ban_everywhere("troll", "admin", START_MS)
    await store.ban_everywhere("spammer", "admin", START_MS)
    await store.ban_everywhere("troll", "other-admin", START_MS + 1)  # banned again: no error
    assert await store.server_bans() == {"troll", "spammer"}


async def test_a_restored_room_holds_every_seat_muted_until_its_deadline(
    store: SqlRoomStore,
) -> None:
    await _busy_room(store)
    later = new_room("later", ARTIST, START_MS, title="Tomorrow", scheduled_for=START_MS + 10**9)
    await store.save(later, now_ms=START_MS)
    rooms = {r.id: r for r in await store.open_rooms()}
    now, speaker_grace, host_grace = START_MS + 3_600_000, 30_000, 60_000

    back = restored(rooms["busy"], now, speaker_grace, host_grace)

    assert back.away == (
        Away("artist", now + host_grace),
        Away("ana", now + speaker_grace),
        Away("eve", now + speaker_grace),
        Away("cy", now + speaker_grace),
        Away("bo", now + speaker_grace),
    )
    assert back.muted == {"artist", "ana", "eve", "bo"}  # every microphone; moderators have none
    # A scheduled room has no seats to hold.
    assert restored(rooms["later"], now, speaker_grace, host_grace) == rooms["later"]

    # Who comes back in time keeps their seat, muted; who does not loses it at the deadline.
    for user in (ARTIST, ANA, BO):
        back, _ = apply(back, Join(), _actor(user), now + 1000)
    assert {a.user_id for a in back.away} == {"eve", "cy"}
    assert "ana" in back.muted
    after, _ = apply(back, Expire(), SERVER, now + speaker_grace)
    assert (role_of(after, "ana"), role_of(after, "bo")) == (Role.COHOST, Role.SPEAKER)
    assert role_of(after, "cy") is None
    assert after.cohosts == ("ana",)


# --- participation -----------------------------------------------------------------------------


class Statements:
    """The kind (first keyword) of every SQL statement sent on an engine, and its commits."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.sql: list[str] = []
        self.commits = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._executed)
        event.listen(engine.sync_engine, "commit", self._committed)

    def _executed(self, *args: Any) -> None:
        self.sql.append(str(args[2]).lstrip().split(None, 1)[0].upper())

    def _committed(self, *_: Any) -> None:
        self.commits += 1

    def writes(self) -> list[str]:
        return [s for s in self.sql if s in {"INSERT", "UPDATE", "DELETE"}]


async def _participation(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    """(room_id, user_id, role, market, joined_at, left_at) of every row, by user."""
    query = "SELECT room_id, user_id, role, market, joined_at, left_at FROM participation"
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(text(query + " ORDER BY user_id"))]


async def _still_open(engine: AsyncEngine) -> int:
    query = "SELECT count(*) FROM participation WHERE left_at IS NULL"
    async with engine.connect() as conn:
        return int((await conn.execute(text(query))).scalar_one())


@contextlib.asynccontextmanager
async def _running(engine: AsyncEngine, clock: FakeClock) -> AsyncIterator[ParticipationLog]:
    log = ParticipationLog(session_factory(engine), clock, flush_interval_s=1.0)
    log.start()
    try:
        await eventually(lambda: clock.sleepers == 1)  # the flusher waits on the clock
        yield log
    finally:
        await log.stop()


async def _tick(clock: FakeClock, seconds: float) -> None:
    """Let the flusher's interval pass and wait until its write is done (it sleeps again)."""
    await clock.advance(seconds)
    await eventually(lambda: clock.sleepers == 1)


def _join_all(log: ParticipationLog, users: Iterable[str], role: str = "listener") -> None:
    for user in users:
        log.joined("room", user, role, "KR")


async def test_five_hundred_short_visits_are_one_transaction_of_complete_rows(
    engine: AsyncEngine, fake_clock: FakeClock
) -> None:
    fans = [f"fan-{i:03}" for i in range(500)]
    async with _running(engine, fake_clock) as log:
        seen = Statements(engine)
        _join_all(log, fans)
        await fake_clock.advance(0.4)
        for fan in fans:
            log.left("room", fan)
        assert seen.sql == []  # nothing is written per join or leave

        await _tick(fake_clock, 0.6)

        assert seen.commits == 1
        assert seen.writes() == ["INSERT"]  # complete rows: no update afterwards
        rows = await _participation(engine)
        assert len(rows) == 500
        assert rows[0] == ("room", "fan-000", "listener", "KR", START_MS, START_MS + 400)
        assert {(r[4], r[5]) for r in rows} == {(START_MS, START_MS + 400)}


async def test_a_visit_across_two_flushes_is_closed_by_an_update(
    engine: AsyncEngine, fake_clock: FakeClock
) -> None:
    async with _running(engine, fake_clock) as log:
        log.joined("room", "ana", "speaker", None)
        await _tick(fake_clock, 1.0)
        assert await _participation(engine) == [("room", "ana", "speaker", None, START_MS, None)]

        seen = Statements(engine)
        await fake_clock.advance(0.3)
        log.left("room", "ana")
        await _tick(fake_clock, 0.7)

        assert seen.writes() == ["UPDATE"]
        assert await _participation(engine) == [
            ("room", "ana", "speaker", None, START_MS, START_MS + 1300)
        ]


async def test_shutdown_closes_every_open_visit(engine: AsyncEngine, fake_clock: FakeClock) -> None:
    async with _running(engine, fake_clock) as log:
        _join_all(log, ["early-1", "early-2", "early-3"])
        await _tick(fake_clock, 1.0)  # written while still open
        _join_all(log, ["late-1", "late-2"])  # not written yet
        log.left("room", "early-1")
        await fake_clock.advance(0.5)
        log.close_all()
    # stop() wrote the last batch

    assert await _still_open(engine) == 0
    rows = await _participation(engine)
    assert [(r[1], r[5]) for r in rows] == [
        ("early-1", START_MS + 1000),
        ("early-2", START_MS + 1500),
        ("early-3", START_MS + 1500),
        ("late-1", START_MS + 1500),
        ("late-2", START_MS + 1500),
    ]
