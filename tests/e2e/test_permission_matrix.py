"""The permission matrix (issue 12): every client event × every kind of user × every kind of
target, over real Socket.IO against one real server, checked against the permission table.

A cell is one event sent by one kind of user (host, co-host, moderator, speaker, listener,
banned user, non-member, admin) at one kind of target (host, co-host, moderator, speaker,
listener, self) when the event has one, with each role the event can hand out (``stage:invite``)
and each playlist mode the rule depends on. Its expectation is computed, not copied: what
:func:`liveroom.permissions.authorize` says for the same standings, plus the finer rule a rule's
note names (only the author withdraws a question; only an admin bans server-wide). A few
well-known cells are also asserted literally (:data:`KNOWN`). Each outcome is one of:

- **escalation**: expected ``forbidden``, the server did it;
- **wrong refusal**: expected allowed, the server said ``forbidden``;
- **masked**: expected ``forbidden``, the server refused for another reason (the permission
  check did not speak first, so the cell proves nothing);
- **changed by a refusal**: ``forbidden``, but the room's stage, Q&A or presence changed;
- **allowed**: done (``ok``) or refused by the room's state (``conflict``, ``full``), which is
  fine; any other code (``invalid``, ``not_found``, ``internal``) means a bad payload here.

Every cell starts from a known room: one built for it, or one in which only refusals happened
since it was built and whose fingerprint (stage version, Q&A version, who is present) is still
the one it had then (a refused event changes nothing). A removal, a ban or a demotion therefore
never leaks into the next cell. One server and one socket per user serve the whole module.

The events come from the permission table and the server's registry, so a new event cannot be
forgotten: :func:`test_every_registered_event_has_a_cell` fails until it gets a payload here.
Admins as targets of moderating actions are checked apart
(:func:`test_admins_rank_as_host_as_targets`).
"""

from __future__ import annotations

import asyncio
import time
import typing
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiortc import RTCPeerConnection

from liveroom.app import QA, REGISTRY, ROOMS, RunningServer, start_server
from liveroom.auth import Grants, Identity
from liveroom.client import LiveroomClient
from liveroom.config import Config
from liveroom.errors import Forbidden
from liveroom.permissions import RULES, Role, Rule, Scope, Standing, Target, Who, authorize
from liveroom.qa.model import Sort
from liveroom.ratelimit import LIMITS, RateLimit
from liveroom.rooms.stage import PlaylistMode
from liveroom.signaling.rooms import InvitePayload
from tests.conftest import TEST_SECRET, make_token

pytestmark = pytest.mark.asyncio(loop_scope="module")

CONCURRENT_GROUPS = 4
"""Groups of cells (each group in rooms of its own) in flight at once."""


# --- who ---------------------------------------------------------------------------------------


class Kind(StrEnum):
    """A kind of user sending the event."""

    HOST = "host"
    COHOST = "cohost"
    MODERATOR = "moderator"
    SPEAKER = "speaker"
    LISTENER = "listener"
    BANNED = "banned"
    NONMEMBER = "non-member"
    ADMIN = "admin"


class On(StrEnum):
    """A kind of user an event acts on."""

    HOST = "host"
    COHOST = "cohost"
    MODERATOR = "moderator"
    SPEAKER = "speaker"
    LISTENER = "listener"
    ADMIN = "admin"
    SELF = "self"


# Actors and targets are different users (a co-host acts on the *other* co-host), except SELF.
ACTOR = {
    Kind.HOST: "h",
    Kind.COHOST: "co",
    Kind.MODERATOR: "mod",
    Kind.SPEAKER: "spk",
    Kind.LISTENER: "lis",
    Kind.BANNED: "banned",
    Kind.NONMEMBER: "out",
    Kind.ADMIN: "adm",
}
TARGET = {
    On.HOST: "h",
    On.COHOST: "co2",
    On.MODERATOR: "mod2",
    On.SPEAKER: "spk2",
    On.LISTENER: "lis2",
    On.ADMIN: "adm2",
}
ADMINS = {"adm", "adm2"}
HOST_GRANTS = {"h"}
ASSIGNED = {"co": "cohost", "co2": "cohost", "mod": "moderator", "mod2": "moderator"}
"""Named staff at ``room:create``: they get the role when they join."""
ON_STAGE = ("spk", "spk2", "adm2")
"""Raise a hand and are approved by the host. ``adm2`` is an admin who speaks."""
EVERY_USER = sorted({*ACTOR.values(), *TARGET.values()})
MEMBER_KINDS = frozenset(set(Kind) - {Kind.BANNED, Kind.NONMEMBER})
MODERATING = ("room:remove", "stage:demote", "stage:mute")
"""PROTOCOL.md's moderating actions (mute, demote, remove, ban): an admin, who acts in any room as
its host, may be their target only by someone of higher rank — nobody."""


def _standing(kind: Kind, rule: Rule, *, playlist_open: bool) -> Standing:
    """Who ``kind`` is where ``rule`` applies, as the permission table understands it."""
    user = ACTOR[kind]
    grants = Standing(admin=user in ADMINS, host_grant=user in HOST_GRANTS)
    if rule.scope is Scope.SERVER:  # no room: the token's grants are all there is
        return grants
    match kind:
        case Kind.BANNED:
            return replace(grants, banned=True, playlist_open=playlist_open)
        case Kind.NONMEMBER:
            return replace(grants, playlist_open=playlist_open)
        case Kind.ADMIN:  # present in the room with no stage role
            return replace(grants, role=Role.LISTENER, playlist_open=playlist_open)
        case _:
            return replace(grants, role=Role(kind.value), playlist_open=playlist_open)


def _target_standing(on: On) -> Standing:
    if on is On.ADMIN:  # an admin on stage as a speaker: acts (and ranks) as host
        return Standing(role=Role.SPEAKER, admin=True)
    return Standing(role=Role(on.value))


# --- cells -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    event: str
    actor: Kind
    target: On | None = None
    grant: Role | None = None
    """``stage:invite``: the role offered."""
    mode: PlaylistMode = PlaylistMode.HOST
    variant: str = ""
    """Event-specific: ``own``/``others`` (``qa:withdraw``), ``everywhere`` (admin bans)."""

    @property
    def actor_id(self) -> str:
        return ACTOR[self.actor]

    @property
    def target_id(self) -> str | None:
        if self.target is None:
            return None
        return self.actor_id if self.target is On.SELF else TARGET[self.target]

    @property
    def name(self) -> str:
        extras = [
            f"as {self.grant}" if self.grant else "",
            f"{self.mode} playlist" if self.mode is not PlaylistMode.HOST else "",
            self.variant,
        ]
        how = ", ".join(e for e in extras if e)
        at = f" → {self.target}" if self.target else ""
        return f"{self.event}{f' ({how})' if how else ''}: {self.actor}{at}"


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    pending_question: str = ""
    approved_question: str = ""
    items: tuple[str, ...] = ()
    """Approved playlist items (the first is cued)."""
    suggestion: str = ""


class Cast:
    """One connected client per user, shared by every room of the module."""

    def __init__(self, server: RunningServer, clients: dict[str, LiveroomClient], sdp: str):
        self.server = server
        self.clients = clients
        self.sdp = sdp

    def __getitem__(self, user_id: str) -> LiveroomClient:
        return self.clients[user_id]


@dataclass(frozen=True, slots=True)
class Ctx:
    cast: Cast
    room: Room
    cell: Cell

    @property
    def host(self) -> LiveroomClient:
        return self.cast["h"]

    @property
    def actor(self) -> LiveroomClient:
        return self.cast[self.cell.actor_id]

    @property
    def is_member(self) -> bool:
        return self.cell.actor in MEMBER_KINDS

    def ref(self, **extra: Any) -> dict[str, Any]:
        return {"room_id": self.room.id, **extra}


Prepare = Callable[[Ctx], Awaitable[dict[str, Any]]]
"""Puts the room in the state the event needs (as other users, or as the actor's own earlier
steps) and gives the event's payload."""


@dataclass(frozen=True, slots=True)
class Spec:
    prepare: Prepare
    needs: frozenset[str] = frozenset()
    """``qa``: a pending and an approved question; ``playlist``: two items and a suggestion."""
    finer: Callable[[Cell], bool] | None = None
    """A rule below the table (the rule's note says it): the author only, admins only."""
    variants: tuple[str, ...] = ("",)
    unseen_effects: bool = False
    """The precondition changes what :func:`fingerprint` cannot see (the playlist): the room is
    not used again after the cell."""


def _fixed(payload: dict[str, Any] | Callable[[Ctx], dict[str, Any]]) -> Prepare:
    async def prepare(ctx: Ctx) -> dict[str, Any]:
        return payload(ctx) if callable(payload) else dict(payload)

    return prepare


def _room_only(**extra: Any) -> Prepare:
    return _fixed(lambda ctx: ctx.ref(**extra))


def _target_payload(**extra: Any) -> Prepare:
    return _fixed(lambda ctx: ctx.ref(user_id=ctx.cell.target_id, **extra))


# --- preconditions ---------------------------------------------------------------------------


async def _create(ctx: Ctx) -> dict[str, Any]:
    # Scheduled: no media to open for it; run_cell ends it.
    return {"title": "made in a cell", "scheduled_for": int(time.time() * 1000) + 3_600_000}


async def _approve_hand(ctx: Ctx) -> dict[str, Any]:
    """Whoever is targeted raises a hand if a listener can (only a raised hand is approved)."""
    target = ctx.cell.target_id
    assert target is not None
    if target in {"lis", "lis2", "adm", "adm2"}:
        await ctx.cast[target].request("stage:request", ctx.ref())
    return ctx.ref(user_id=target)


async def _invite(ctx: Ctx) -> dict[str, Any]:
    assert ctx.cell.grant is not None
    return ctx.ref(user_id=ctx.cell.target_id, role=ctx.cell.grant.value)


INVITE_FOR = {Kind.LISTENER: "speaker", Kind.ADMIN: "speaker", Kind.SPEAKER: "moderator"}
"""What the host offers each kind before ``stage:accept``/``decline`` (co-host seats are full)."""


async def _invited(ctx: Ctx) -> dict[str, Any]:
    role = INVITE_FOR.get(ctx.cell.actor)
    if role is not None:
        await ctx.host.request("stage:invite", ctx.ref(user_id=ctx.cell.actor_id, role=role))
    return ctx.ref()


async def _hand_raised(ctx: Ctx) -> dict[str, Any]:
    if ctx.cell.actor in {Kind.LISTENER, Kind.ADMIN}:
        await ctx.actor.request("stage:request", ctx.ref())
    return ctx.ref()


async def _offer(ctx: Ctx) -> dict[str, Any]:
    return ctx.ref(sdp=ctx.cast.sdp, type="offer")


async def _voted(ctx: Ctx) -> dict[str, Any]:
    qid = ctx.room.approved_question
    if ctx.is_member:
        await ctx.actor.request("qa:vote", {"question_id": qid})
    return {"question_id": qid}


async def _withdraw(ctx: Ctx) -> dict[str, Any]:
    if ctx.cell.variant == "own" and ctx.is_member:
        ack = await ctx.actor.request("qa:ask", ctx.ref(text=f"mine, {ctx.cell.actor}?"))
        return {"question_id": ack["question"]["id"]}
    return {"question_id": ctx.room.pending_question}


async def _playing(ctx: Ctx) -> dict[str, Any]:
    await ctx.host.request("playlist:play", ctx.ref())
    return ctx.ref()


def _question(which: str) -> Prepare:
    return _fixed(lambda ctx: {"question_id": getattr(ctx.room, which)})


ASKED = frozenset({"qa"})
QUEUED = frozenset({"playlist"})

SPECS: dict[str, Spec] = {
    "room:create": Spec(_create),
    "room:start": Spec(_room_only()),
    "room:update": Spec(_room_only(title="renamed by a cell")),
    "room:remind": Spec(_room_only(on=True)),
    "room:join": Spec(_room_only()),
    "room:leave": Spec(_room_only()),
    "room:end": Spec(_room_only()),
    "room:members": Spec(_room_only()),
    "room:remove": Spec(
        _fixed(
            lambda ctx: ctx.ref(
                user_id=ctx.cell.target_id
                if ctx.cell.variant != "everywhere"
                else f"victim-{ctx.room.id}",
                ban=True,
                everywhere=ctx.cell.variant == "everywhere",
            )
        ),
        # `everywhere`: a server-wide ban, at a user who is in no room (nobody else is hurt).
        finer=lambda cell: cell.variant != "everywhere" or cell.actor is Kind.ADMIN,
        variants=("", "everywhere"),
    ),
    "room:report": Spec(_room_only(user_id="lis2", reason="spam links")),
    "user:block": Spec(_fixed({"user_id": "lis2", "on": True})),
    "user:blocks": Spec(_fixed({})),
    "stage:request": Spec(_room_only()),
    "stage:cancel": Spec(_hand_raised),
    "stage:approve": Spec(_approve_hand),
    "stage:invite": Spec(_invite),
    "stage:accept": Spec(_invited),
    "stage:decline": Spec(_invited),
    "stage:demote": Spec(_target_payload()),
    "stage:mute": Spec(_target_payload()),
    "stage:unmute": Spec(_room_only()),
    "rtc:offer": Spec(_offer),
    "react": Spec(_room_only(emoji="❤️")),
    "qa:ask": Spec(_room_only(text="Will you play the old songs?")),
    "qa:list": Spec(_room_only(sort="new")),
    "qa:vote": Spec(_question("approved_question"), ASKED),
    "qa:unvote": Spec(_voted, ASKED),
    "qa:approve": Spec(_question("pending_question"), ASKED),
    "qa:reject": Spec(
        _fixed(lambda ctx: {"question_id": ctx.room.pending_question, "reason": "off topic"}), ASKED
    ),
    "qa:pin": Spec(_question("approved_question"), ASKED),
    "qa:answered": Spec(_question("approved_question"), ASKED),
    "qa:bring_to_stage": Spec(_question("approved_question"), ASKED),
    "qa:delete": Spec(_question("pending_question"), ASKED),
    "qa:withdraw": Spec(
        _withdraw, ASKED, finer=lambda cell: cell.variant == "own", variants=("own", "others")
    ),
    "playlist:add": Spec(
        _room_only(url="https://example.com/tracks/intro.mp3", title="Intro", duration_s=60.0),
        QUEUED,
    ),
    "playlist:approve": Spec(_fixed(lambda ctx: {"item_id": ctx.room.suggestion}), QUEUED),
    "playlist:remove": Spec(_fixed(lambda ctx: {"item_id": ctx.room.items[1]}), QUEUED),
    "playlist:move": Spec(
        _fixed(lambda ctx: {"item_id": ctx.room.items[0], "position": 1}), QUEUED
    ),
    "playlist:play": Spec(_room_only(), QUEUED),
    "playlist:pause": Spec(_playing, QUEUED, unseen_effects=True),
    "playlist:seek": Spec(_room_only(position_s=1.5), QUEUED),
    "playlist:next": Spec(_room_only(), QUEUED),
    "playlist:previous": Spec(_room_only(), QUEUED),
    "playlist:repeat": Spec(_room_only(on=True), QUEUED),
    "playlist:vote_skip": Spec(_room_only(), QUEUED),
    "playlist:ready": Spec(
        _fixed(lambda ctx: ctx.ref(item_id=ctx.room.items[0], ready=True)), QUEUED
    ),
    "time:sync": Spec(_fixed({"t0": 1.0})),
}

INVITE_ROLES = tuple(
    Role(r) for r in typing.get_args(InvitePayload.model_fields["role"].annotation)
)


def cells_of(event: str, *, targets: tuple[On, ...] | None = None) -> list[Cell]:
    """Every cell of ``event``: actors × targets (if it has one) × its variants. The matrix's
    targets are every kind but admins (see :func:`test_admins_rank_as_host_as_targets`)."""
    rule, spec = RULES[event], SPECS[event]
    aims: tuple[On | None, ...] = (None,)
    if rule.target is not Target.NONE:
        aims = targets if targets is not None else tuple(o for o in On if o is not On.ADMIN)
    grants: tuple[Role | None, ...] = INVITE_ROLES if rule.host_only_grants else (None,)
    modes = tuple(PlaylistMode) if rule.who is Who.PLAYLIST_CONTROLLERS else (PlaylistMode.HOST,)
    cells = []
    for actor in Kind:
        for target in aims:
            if actor is Kind.HOST and target is On.HOST:
                continue  # the one host: that cell is "self"
            for variant in spec.variants:
                if variant == "everywhere" and target is not On.LISTENER:
                    continue  # one cell per actor: the victim is in no room
                for grant in grants:
                    for mode in modes:
                        cells.append(Cell(event, actor, target, grant, mode, variant))
    return cells


def expected_allowed(cell: Cell) -> bool:
    """What the permission table (and the rule's finer note) says of ``cell``."""
    rule = RULES[cell.event]
    actor = _standing(cell.actor, rule, playlist_open=cell.mode is PlaylistMode.OPEN)
    target = None
    if cell.target is not None:
        target = actor if cell.target is On.SELF else _target_standing(cell.target)
    try:
        authorize(
            rule,
            actor,
            target=target,
            is_self=cell.target is On.SELF,
            granted_role=cell.grant,
        )
    except Forbidden:
        return False
    finer = SPECS[cell.event].finer
    return finer is None or finer(cell)


KNOWN: dict[Cell, str] = {
    # Literal cells everyone knows by heart: the computed expectation and the server must agree.
    Cell("stage:mute", Kind.SPEAKER, On.HOST): "forbidden",
    Cell("stage:mute", Kind.SPEAKER, On.SELF): "ok",
    Cell("stage:mute", Kind.MODERATOR, On.SPEAKER): "ok",
    Cell("stage:mute", Kind.COHOST, On.SPEAKER): "ok",
    Cell("stage:demote", Kind.COHOST, On.MODERATOR): "forbidden",
    Cell("stage:demote", Kind.LISTENER, On.SPEAKER): "forbidden",
    Cell("stage:demote", Kind.HOST, On.COHOST): "ok",
    Cell("room:remove", Kind.MODERATOR, On.COHOST): "forbidden",
    Cell("room:remove", Kind.COHOST, On.COHOST): "forbidden",
    Cell("room:remove", Kind.HOST, On.COHOST): "ok",
    Cell("room:remove", Kind.MODERATOR, On.LISTENER): "ok",
    Cell("stage:invite", Kind.LISTENER, On.LISTENER, Role.SPEAKER): "forbidden",
    Cell("stage:invite", Kind.SPEAKER, On.LISTENER, Role.SPEAKER): "forbidden",
    Cell("stage:invite", Kind.COHOST, On.LISTENER, Role.COHOST): "forbidden",
    Cell("stage:invite", Kind.MODERATOR, On.LISTENER, Role.MODERATOR): "forbidden",
    Cell("stage:invite", Kind.COHOST, On.LISTENER, Role.SPEAKER): "ok",
    Cell("stage:invite", Kind.HOST, On.LISTENER, Role.MODERATOR): "ok",
    Cell("stage:approve", Kind.SPEAKER, On.LISTENER): "forbidden",
    Cell("stage:approve", Kind.MODERATOR, On.LISTENER): "ok",
    Cell("stage:unmute", Kind.MODERATOR): "forbidden",
    Cell("stage:unmute", Kind.SPEAKER): "ok",
    Cell("room:end", Kind.COHOST): "forbidden",
    Cell("room:end", Kind.HOST): "ok",
    Cell("room:join", Kind.BANNED): "forbidden",
    Cell("room:join", Kind.NONMEMBER): "ok",
    Cell("react", Kind.NONMEMBER): "forbidden",
    Cell("qa:approve", Kind.SPEAKER): "forbidden",
    Cell("qa:approve", Kind.MODERATOR): "ok",
    Cell("qa:withdraw", Kind.HOST, variant="others"): "forbidden",
    Cell("qa:withdraw", Kind.LISTENER, variant="own"): "ok",
    Cell("playlist:play", Kind.SPEAKER): "forbidden",
    Cell("playlist:play", Kind.SPEAKER, mode=PlaylistMode.OPEN): "ok",
    Cell("room:create", Kind.LISTENER): "forbidden",
    Cell("time:sync", Kind.BANNED): "ok",
}


# --- the server and the cast -----------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def matrix_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningServer]:
    """One server for the whole matrix: limits out of the way (cells run side by side)."""
    config = Config(
        host="127.0.0.1",
        port=0,
        data_dir=Path(tmp_path_factory.mktemp("matrix")) / "data",
        secret=TEST_SECRET,
        rate_limits={name: RateLimit(1_000_000, 1) for name in LIMITS},
        socket_queue_limit=1_000_000,
        socket_inflight_limit=10_000,
        shutdown_timeout_s=1.0,
    )
    running = await start_server(config)
    yield running
    await running.stop()


async def _an_offer() -> str:
    """A complete SDP offer (one audio section, candidates gathered), made once."""
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp: str = pc.localDescription.sdp
    finally:
        await pc.close()
    return sdp


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cast(matrix_server: RunningServer) -> AsyncIterator[Cast]:
    async def connect(user: str) -> LiveroomClient:
        token = make_token(user, admin=user in ADMINS, host=user in HOST_GRANTS)
        return await LiveroomClient.connect(matrix_server.url, token)

    clients = dict(zip(EVERY_USER, await asyncio.gather(*map(connect, EVERY_USER)), strict=True))
    try:
        yield Cast(matrix_server, clients, await _an_offer())
    finally:
        await asyncio.gather(*(c.close() for c in clients.values()))


def cast_of(cells: list[Cell]) -> frozenset[str]:
    """Who is in the cells' room: the host, the actors, the targets, and lis2 (who asks the
    questions and suggests a track) when the event needs them."""
    users = {"h"}
    for cell in cells:
        users |= {cell.actor_id, cell.target_id or "h"}
        if SPECS[cell.event].needs:
            users.add("lis2")
    return frozenset(users)


async def build_room(
    cast: Cast, users: frozenset[str], *, mode: PlaylistMode, needs: frozenset[str]
) -> Room:
    """A live room hosted by h, with exactly ``users`` in their roles: co-hosts co, co2;
    moderators mod, mod2; speakers spk, spk2 and the admin adm2; listeners lis, lis2 and the admin
    adm; ``banned`` joined and was removed with a ban; ``out`` never came. With ``qa``: lis2's
    pending and approved questions; with ``playlist``: two items by the host, lis2's suggestion.
    """
    host = cast["h"]
    staff = [{"user_id": u, "role": r} for u, r in ASSIGNED.items() if u in users]
    settings = {"playlist_mode": mode.value, "qa_mode": "premoderated"}
    ack = await host.request(
        "room:create", {"title": "permission matrix", "staff": staff, "settings": settings}
    )
    room = Room(ack["room"]["id"])
    ref = {"room_id": room.id}
    await host.request("room:join", ref)
    await asyncio.gather(*(cast[u].request("room:join", ref) for u in sorted(users - {"h", "out"})))
    speakers = [u for u in ON_STAGE if u in users]
    await asyncio.gather(*(cast[u].request("stage:request", ref) for u in speakers))
    for user in speakers:
        await host.request("stage:approve", {**ref, "user_id": user})
    if "banned" in users:
        await host.request("room:remove", {**ref, "user_id": "banned", "ban": True})
    if "qa" in needs:
        lis2 = cast["lis2"]
        pending = await lis2.request("qa:ask", {**ref, "text": "Pending: where is the tour?"})
        approved = await lis2.request("qa:ask", {**ref, "text": "Approved: a new album?"})
        await host.request("qa:approve", {"question_id": approved["question"]["id"]})
        room = replace(
            room,
            pending_question=pending["question"]["id"],
            approved_question=approved["question"]["id"],
        )
    if "playlist" in needs:
        items = []
        for n in (1, 2):
            track = {"url": f"https://example.com/{n}.mp3", "title": f"T{n}", "duration_s": 60.0}
            items.append((await host.request("playlist:add", {**ref, **track}))["item"]["id"])
        suggested = await cast["lis2"].request(
            "playlist:add", {**ref, "url": "https://example.com/s.mp3", "title": "Suggested"}
        )
        assert suggested["item"]["approved"] is False
        room = replace(room, items=tuple(items), suggestion=suggested["item"]["id"])
    state = cast.server.app[ROOMS].get(room.id)
    assert state is not None and state.settings.playlist_mode is mode
    assert state.host == "h"
    assert set(state.cohosts) == {"co", "co2"} & users
    assert set(state.moderators) == {"mod", "mod2"} & users
    assert state.speakers == tuple(speakers)
    assert state.banned == ({"banned"} & users)
    return room


Fingerprint = tuple[int, int | None, frozenset[str]]


async def fingerprint(cast: Cast, room: Room) -> Fingerprint | None:
    """The room's stage version, Q&A version and who is present (``None``: it ended)."""
    app = cast.server.app
    state = app[ROOMS].get(room.id)
    if state is None:
        return None
    qa_version = None
    if room.pending_question:
        staff = Identity("h", "h", grants=Grants(admin=True))
        qa_version = (await app[QA].listing(staff, room.id, Sort.NEW))["version"]
    present = frozenset(m.user_id for m in app[ROOMS].presence.members(room.id))
    return state.version, qa_version, present


@dataclass(frozen=True, slots=True)
class Outcome:
    cell: Cell
    expected: bool
    code: str
    """``ok`` or the error code."""
    message: str = ""
    changed: bool = False
    """A refused event changed the room anyway."""

    @property
    def verdict(self) -> str:
        if self.expected:
            return "wrong refusal" if self.code == "forbidden" else "allowed"
        if self.code == "ok":
            return "escalation"
        if self.code != "forbidden":
            return "masked"
        return "changed by a refusal" if self.changed else "refused"


async def run_cell(cast: Cast, room: Room, cell: Cell) -> Outcome:
    spec = SPECS[cell.event]
    payload = await spec.prepare(Ctx(cast, room, cell))
    before = await fingerprint(cast, room)
    ack = await cast[cell.actor_id].call(cell.event, payload)
    after = await fingerprint(cast, room)
    expected = expected_allowed(cell)
    if ack.get("ok"):
        if cell.event == "room:create":  # the admin acts as host in every room
            await cast["adm"].request("room:end", {"room_id": ack["room"]["id"]})
        return Outcome(cell, expected, "ok")
    error = ack.get("error", {})
    code, message = str(error.get("code")), str(error.get("message"))
    return Outcome(cell, expected, code, message, changed=after != before)


async def run_group(cast: Cast, cells: list[Cell]) -> list[Outcome]:
    """Cells of one event (and playlist mode, variant and target), one after another in rooms
    with every user they need. Each starts from a freshly built room, or from one where only
    refusals happened since it was built and whose fingerprint shows that nothing changed."""
    spec = SPECS[cells[0].event]
    users = cast_of(cells)
    # Refusals first: they leave the room as it was.
    ordered = sorted(cells, key=expected_allowed)
    outcomes: list[Outcome] = []
    room: Room | None = None
    built: Fingerprint | None = None
    try:
        for cell in ordered:
            if room is None:
                room = await build_room(cast, users, mode=cell.mode, needs=spec.needs)
                built = await fingerprint(cast, room)
            outcome = await run_cell(cast, room, cell)
            outcomes.append(outcome)
            clean = outcome.code != "ok" and not spec.unseen_effects
            if not clean or await fingerprint(cast, room) != built:
                await _end(cast, room)
                room = None
    finally:
        if room is not None:
            await _end(cast, room)
    return outcomes


async def _end(cast: Cast, room: Room) -> None:
    # The admin acts as host in every room, whoever hosts it by now (`gone` if it ended).
    await cast["adm"].call("room:end", {"room_id": room.id})


async def run_cells(cast: Cast, cells: list[Cell]) -> list[Outcome]:
    # A group per target: a room with one target at a time keeps its seats free (a host may
    # invite a listener as co-host when only one co-host is there).
    groups: dict[tuple[PlaylistMode, str, On | None], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.mode, cell.variant, cell.target), []).append(cell)
    gate = asyncio.Semaphore(CONCURRENT_GROUPS)

    async def one(group: list[Cell]) -> list[Outcome]:
        async with gate:
            return await run_group(cast, group)

    done = await asyncio.gather(*(one(g) for g in groups.values()))
    return [o for outcomes in done for o in outcomes]


# --- verdicts ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """Every outcome of the module, for the summary test."""

    outcomes: list[Outcome] = field(default_factory=list)
    events: set[str] = field(default_factory=set)


TALLY = Tally()

ALLOWED_STATE_CODES = frozenset({"ok", "conflict", "full"})
"""What an allowed cell may get: done, or refused by the room's state (not by a bad payload)."""
WRONG = frozenset({"escalation", "wrong refusal", "masked", "changed by a refusal"})


def problems_of(outcomes: list[Outcome]) -> list[str]:
    found = [
        f"{o.verdict}: {o.cell.name} → {o.code} {o.message}".rstrip()
        for o in outcomes
        if o.verdict in WRONG or (o.expected and o.code not in ALLOWED_STATE_CODES)
    ]
    found += [
        f"known cell: {o.cell.name} → {o.code}, not {KNOWN[o.cell]}"
        for o in outcomes
        if o.cell in KNOWN and o.code != KNOWN[o.cell]
    ]
    return found


# --- the tests -------------------------------------------------------------------------------


async def test_every_registered_event_has_a_cell(matrix_server: RunningServer) -> None:
    registered = set(matrix_server.app[REGISTRY].handlers)
    assert set(SPECS) == set(RULES), "every row of the permission table needs a payload here"
    covered = {e for e in SPECS if e in registered}
    assert covered == registered, f"events without a matrix cell: {registered - covered}"


async def test_known_cells_are_what_the_table_says() -> None:
    for cell, code in KNOWN.items():
        assert cell in cells_of(cell.event), cell.name
        assert expected_allowed(cell) is (code == "ok"), f"the table disagrees: {cell.name}"


@pytest.mark.parametrize("event", sorted(RULES))
async def test_permission_matrix(event: str, cast: Cast) -> None:
    if event not in SPECS:
        pytest.fail(f"{event} is in the permission table: give it a payload in SPECS")
    if event not in cast.server.app[REGISTRY].handlers:
        pytest.skip(f"{event} has a row in the permission table but no handler on the server")
    outcomes = await run_cells(cast, cells_of(event))
    TALLY.outcomes.extend(outcomes)
    TALLY.events.add(event)
    if problems := problems_of(outcomes):
        pytest.fail(
            f"{event}: {len(problems)} of {len(outcomes)} cells wrong:\n" + "\n".join(problems)
        )


@pytest.mark.parametrize("event", MODERATING)
async def test_admins_rank_as_host_as_targets(event: str, cast: Cast) -> None:
    """An admin acts in any room as its host (PROTOCOL.md), so a moderating action may not
    target one: here ``adm2``, an admin on stage as a speaker."""
    outcomes = await run_cells(cast, cells_of(event, targets=(On.ADMIN,)))
    TALLY.outcomes.extend(outcomes)
    if problems := problems_of(outcomes):
        pytest.fail(
            f"{event}: {len(problems)} of {len(outcomes)} cells wrong:\n"
            + "\n".join(problems)
            + "\nDEFECT: the server ranks a targeted admin by their stage role, not as host: "
            "RoomService.target_standing (liveroom/rooms/service.py) and the stage model's "
            "_target (liveroom/rooms/model.py) build the target's Standing without `admin`, so "
            "a moderator can demote, mute, remove or ban a server admin."
        )


async def test_matrix_summary(matrix_server: RunningServer) -> None:
    """Over every cell of the module: no escalation, no wrong refusal."""
    if not set(matrix_server.app[REGISTRY].handlers) <= TALLY.events:
        pytest.skip("only part of the matrix ran in this session")
    verdicts = Counter(o.verdict for o in TALLY.outcomes)
    codes = Counter((o.verdict, o.code) for o in TALLY.outcomes)
    summary = f"{len(TALLY.outcomes)} cells: {dict(verdicts)}; by code: {dict(codes)}"
    assert verdicts["escalation"] == 0, summary
    assert verdicts["wrong refusal"] == 0, summary
