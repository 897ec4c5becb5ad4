"""A stateful fuzzer of a real liveroom server, shared by ``tests/e2e/test_fuzz.py`` (a few
thousand steps in CI) and ``bench/fuzz.py`` (≥ 100,000 steps).

Each example starts its own server (``liveroom.app.start_server``, SQLite in a temporary data dir,
a :class:`~tests.fakes.FakeClock` so grace periods run out without sleeping, every rate limit
raised through ``Config.rate_limits``) on a private event loop that this thread drives step by
step, and connects one real Socket.IO client per user (two for ``host1`` and ``fan01``). A
hypothesis :class:`~hypothesis.stateful.RuleBasedStateMachine` then sends every client event of
the protocol with valid payloads and with garbage (wrong types, huge strings, unknown and missing
fields, nested junk, several arguments or none, frames over the size limit, unknown events),
alone and in concurrent bursts, drops and reopens connections, races events with their socket's
close and lets fake time pass.

Checked after every step, on the live server objects:

- every event got exactly one well-formed ack (``{"ok": true, ...}`` with the extras PROTOCOL.md
  promises, or ``{"ok": false, "error": {code, message}}`` with a protocol code, never
  ``internal``), and a refused event changed no room and nobody's presence;
- per open room: one host, nobody in two stage roles, ≤ 2 co-hosts, ≤ 10 speakers and ≤ 10
  moderators (pending invitations included), microphones only on stage, no banned user present,
  seated, raising a hand or invited; everyone on stage present or held as away (the host too,
  while live), nobody present held as away, raised hands only of present users;
- presence: the count is the number of distinct present users, each on live sockets of their own,
  exactly those the clients' acknowledged joins, leaves, removals and disconnects say;
  ``listener_count`` in the snapshot is that count; ended rooms have nobody; media peers belong to
  present users;
- no ERROR record in any log and no exception the event loop saw (:class:`ServerLog`), while
  the server runs and while it stops.

Server defects found by the fuzzer and not fixed yet are listed in :data:`KNOWN_DEFECTS`; unless
:attr:`FuzzOptions.known_defects` is set the run steers clear of them, so it looks for new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import shutil
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import hypothesis
from aiortc import RTCPeerConnection
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    get_state_machine_test,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from liveroom.app import AUDIO, ROOMS, SIGNALING, RunningServer, start_server
from liveroom.auth import Grants, Identity, TokenService
from liveroom.client import LiveroomClient, Refused
from liveroom.clock import Clock
from liveroom.config import DEFAULT_REACTIONS, Config
from liveroom.errors import LiveroomError
from liveroom.permissions import Role
from liveroom.ratelimit import DEFAULT_RATE_LIMITS, RateLimit
from liveroom.rooms import model
from liveroom.rooms.stage import Actor, EndRoom, RoomState, RoomStatus
from tests.fakes import FakeClock
from tests.rooms.test_model import PROTOCOL_FIELDS

T = TypeVar("T")

SECRET = "fuzz-secret-" + "z" * 60
ACK_TIMEOUT_S = 10.0
STEP_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 2.0
FRAME_LIMIT = 64 * 1024
"""Engine.IO's message size limit (``Config.max_message_bytes``): a bigger frame closes the
connection instead of being answered."""
CAPS = {Role.COHOST: 2, Role.SPEAKER: 10, Role.MODERATOR: 10}
MAX_OPEN_ROOMS = 3
"""Each live room runs a real-time mixer and HLS encoder: beyond this many open rooms the oldest
is ended (through the server's own ``RoomService.apply``) before another is created."""
MACRO_RUNS = 3
"""The rules that send many events (or open a room) run at most this often per example."""
SPEAKER_GRACE_S = 5.0
HOST_GRACE_S = 10.0

ERROR_CODES = frozenset(
    {"forbidden", "not_found", "invalid", "conflict", "full", "rate_limited", "gone", "internal"}
)
"""PROTOCOL.md's ack codes (``unauthorized`` is HTTP only)."""

RESERVED_EVENTS = ("connect", "disconnect", "connect_error", "message")
"""Names python-socketio uses itself: a client sending them gets ``invalid`` like any other."""

# --- known defects -------------------------------------------------------------------------------

KNOWN_DEFECTS: dict[str, str] = {}
"""Defects found by the fuzzer and not fixed yet: name → what and where. Unless
:attr:`FuzzOptions.known_defects` is set, the generators avoid their inputs (``_allowed``), and
``tests/e2e/test_fuzz.py`` reproduces each, marked ``xfail(strict=True)``."""

# --- users and sockets ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FuzzUser:
    id: str
    host: bool = False
    admin: bool = False
    verified: bool = False
    guest: bool = False
    market: str | None = None

    def token(self, clock: Clock) -> str:
        grants = Grants(self.host, self.admin)
        identity = Identity(
            self.id, self.id.title(), self.verified, self.market, grants, self.guest
        )
        return TokenService(SECRET, clock, 7 * 86400).issue(identity, 7 * 86400)


USERS: tuple[FuzzUser, ...] = (
    FuzzUser("host1", host=True),
    FuzzUser("host2", host=True, market="KR"),
    FuzzUser("admin", admin=True),
    FuzzUser("fan01", verified=True),
    *(FuzzUser(f"fan{i:02}") for i in range(2, 12)),
    FuzzUser("g_guest1", guest=True),
)
"""Two hosts, an admin, eleven fans (enough to fill the ten speaker seats and more) and a guest."""

SLOTS: tuple[int, ...] = (*range(len(USERS)), 0, 3)
"""Sockets, by their user's index: everyone once, ``host1`` and ``fan01`` twice."""

STAFF_SLOTS = (0, 1, 2)
FAN_SLOTS = tuple(s for s, u in enumerate(SLOTS) if USERS[u].id.startswith("fan"))

# --- payloads ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ref:
    """A placeholder resolved when the step runs: ``room[0]`` is the newest open room
    (``ended[0]`` the newest ended one), ``question[i]``/``item[i]`` the i-th newest known id,
    ``user[i]`` a user, ``self[0]`` the sender, ``at[d]`` the server's now + d ms,
    ``sdp-sendrecv[0]`` a real WebRTC offer."""

    kind: str
    index: int

    def __repr__(self) -> str:
        return f"{self.kind}[{self.index}]"


@dataclass(frozen=True, slots=True)
class Args:
    """Send these as separate Socket.IO arguments (none: an event without a payload)."""

    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Call:
    event: str
    payload: Any

    def __repr__(self) -> str:
        return f"Call({self.event!r}, {self.payload!r})"


def weighted(*options: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``options``, in proportion to their weights (shrinking towards the first)."""
    picks = [i for i, (weight, _) in enumerate(options) for _ in range(weight)]
    return st.sampled_from(picks).flatmap(lambda i: options[i][1])


def _refs(kind: str, n: int = 6) -> st.SearchStrategy[Ref]:
    return st.builds(Ref, st.just(kind), st.integers(0, n - 1))


HEX_ID = "0123456789abcdef"
"""An id of the right shape that names nothing."""

WEIRD_STRINGS: tuple[str, ...] = (
    "",
    " ",
    "\t\n ",
    "\x00",
    "\ud800",
    "a\udfffb",
    "\u202etxet",
    "\u200b",
    "🔥",
    "👍🏽",
    "ℌ𝔢𝔩𝔩𝔬",
    "<script>alert(1)</script>",
    "'; DROP TABLE rooms; --",
    "%s%s%n",
    "../../etc/passwd",
    "null",
    "NaN",
    "-1",
    "x" * 64,
    "x" * 121,
    "x" * 281,
    "x" * 501,
)
BIG_INTS: tuple[int, ...] = (
    -1,
    0,
    2**31,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63) - 1,
    10**30,
)

printable = st.characters(exclude_categories=("Cc", "Cs"))
huge_strings = st.one_of(
    st.builds(str.__mul__, st.sampled_from(["x", " ", "é", "😀", "\x00"]), st.integers(1000, 2000)),
    st.builds(str.__mul__, st.just("x"), st.integers(10_000, 20_000)),
)


def texts(max_size: int = 30) -> st.SearchStrategy[str]:
    return weighted(
        (6, st.text(printable, min_size=1, max_size=max_size)),
        (1, st.text(min_size=1, max_size=max_size)),
        (2, st.sampled_from(WEIRD_STRINGS)),
        (1, huge_strings),
    )


scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from(BIG_INTS), st.floats(), texts()
)
junk: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=6), children, max_size=3),
    ),
    max_leaves=8,
)


def _nest(depth: int, as_dict: bool) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"room_id": value} if as_dict else [value]
    return value


deep = st.builds(_nest, st.integers(10, 400), st.booleans())
arguments = st.builds(Args, st.lists(junk, max_size=3).map(tuple))

room_ids = weighted((18, _refs("room")), (1, _refs("ended", 1)), (1, st.just(HEX_ID)))
user_ids = weighted(
    (6, _refs("user", len(USERS))), (2, _refs("self", 1)), (1, st.sampled_from(["nobody", ""]))
)
question_ids = weighted((9, _refs("question")), (1, st.just(HEX_ID)))
item_ids = weighted((9, _refs("item")), (1, st.just(HEX_ID)))
times = weighted(
    (2, st.builds(Ref, st.just("at"), st.sampled_from([60_000, 3_600_000, 1, -60_000]))),
    (1, st.sampled_from(BIG_INTS)),
)
markets = weighted((6, st.sampled_from(["KR", "us", "FR"])), (1, st.sampled_from(["", "USA"])))
bools = st.booleans()
floats = weighted(
    (6, st.floats(min_value=0, max_value=7200)),
    (1, st.sampled_from([0.0, -1.0, 86400.0, 86401.0, 1e300])),
    (1, st.floats()),
)
settings_dicts = st.fixed_dictionaries(
    {},
    optional={
        "qa_mode": st.sampled_from(["premoderated", "open", "off", "OPEN"]),
        "playlist_mode": st.sampled_from(["host", "open"]),
        "playlist_output": st.sampled_from(["clients", "room"]),
        "recording": bools,
        "on_host_leave": st.sampled_from(["handover", "end"]),
        "qa_return_to_audience": bools,
    },
)
staff_entries = st.fixed_dictionaries(
    {"user_id": user_ids, "role": st.sampled_from(["cohost", "moderator", "speaker"])}
)
roles = st.sampled_from(["speaker", "cohost", "moderator", "host", "listener"])
urls = weighted(
    (4, st.sampled_from(["https://example.com/a.mp3", "http://x.test/b?c=d"])),
    (1, st.sampled_from(["ftp://x", "https://", "javascript:alert(1)"])),
    (1, texts(40)),
)
sdps = weighted(
    (2, st.builds(Ref, st.sampled_from(["sdp-sendrecv", "sdp-recvonly"]), st.just(0))),
    (1, st.sampled_from(["v=0\r\n", "x", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"])),
    (1, texts(60)),
)

Fields = Mapping[str, st.SearchStrategy[Any]]
ROOM_ONLY: tuple[Fields, Fields] = ({"room_id": room_ids}, {})
TARGET: tuple[Fields, Fields] = ({"room_id": room_ids, "user_id": user_ids}, {})
QUESTION: tuple[Fields, Fields] = ({"question_id": question_ids}, {})
ITEM: tuple[Fields, Fields] = ({"item_id": item_ids}, {})

SPECS: dict[str, tuple[Fields, Fields]] = {
    "room:create": (
        {"title": texts()},
        {
            "topics": st.lists(texts(10), max_size=6),
            "scheduled_for": times,
            "market": markets,
            "settings": settings_dicts,
            "staff": st.lists(staff_entries, max_size=3),
        },
    ),
    "room:start": ROOM_ONLY,
    "room:update": ({"room_id": room_ids}, {"title": texts(), "settings": settings_dicts}),
    "room:remind": ({"room_id": room_ids, "on": bools}, {}),
    "room:join": ({"room_id": room_ids}, {"market": markets}),
    "room:leave": ROOM_ONLY,
    "room:end": ROOM_ONLY,
    "room:members": (
        {"room_id": room_ids},
        {"query": texts(10), "cursor": st.one_of(st.none(), texts(20))},
    ),
    "room:remove": (
        {"room_id": room_ids, "user_id": user_ids},
        {"ban": bools, "everywhere": bools},
    ),
    "room:report": (
        {"room_id": room_ids, "reason": texts()},
        {"user_id": user_ids, "question_id": question_ids},
    ),
    "user:block": ({"user_id": user_ids, "on": bools}, {}),
    "user:blocks": ({}, {}),
    "stage:request": ROOM_ONLY,
    "stage:cancel": ROOM_ONLY,
    "stage:approve": TARGET,
    "stage:invite": ({"room_id": room_ids, "user_id": user_ids, "role": roles}, {}),
    "stage:accept": ROOM_ONLY,
    "stage:decline": ROOM_ONLY,
    "stage:demote": TARGET,
    "stage:mute": TARGET,
    "stage:unmute": ROOM_ONLY,
    "rtc:offer": (
        {"room_id": room_ids, "sdp": sdps, "type": st.sampled_from(["offer", "answer"])},
        {},
    ),
    "react": ({"room_id": room_ids, "emoji": st.sampled_from(DEFAULT_REACTIONS) | texts(4)}, {}),
    "qa:ask": ({"room_id": room_ids, "text": texts(60)}, {"anonymous": bools}),
    "qa:list": ({"room_id": room_ids}, {"sort": st.sampled_from(["hot", "top", "new", "old"])}),
    "qa:vote": QUESTION,
    "qa:unvote": QUESTION,
    "qa:approve": QUESTION,
    "qa:reject": ({"question_id": question_ids}, {"reason": texts()}),
    "qa:pin": QUESTION,
    "qa:answered": QUESTION,
    "qa:bring_to_stage": QUESTION,
    "qa:delete": QUESTION,
    "qa:withdraw": QUESTION,
    "playlist:add": (
        {"room_id": room_ids},
        {"url": urls, "media_id": item_ids, "title": texts(), "duration_s": floats},
    ),
    "playlist:approve": ITEM,
    "playlist:remove": ITEM,
    "playlist:move": ({"item_id": item_ids, "position": st.integers(-1, 12)}, {}),
    "playlist:play": ({"room_id": room_ids}, {"item_id": item_ids}),
    "playlist:pause": ROOM_ONLY,
    "playlist:seek": ({"room_id": room_ids, "position_s": floats}, {}),
    "playlist:next": ROOM_ONLY,
    "playlist:previous": ROOM_ONLY,
    "playlist:repeat": ({"room_id": room_ids, "on": bools}, {}),
    "playlist:vote_skip": ({"room_id": room_ids}, {"item_id": item_ids}),
    "playlist:ready": ({"room_id": room_ids, "ready": bools}, {"item_id": item_ids}),
    "time:sync": ({"t0": floats}, {"rtt": floats}),
}
"""Every client event and its fields (required, optional): PROTOCOL.md's table, and what the
server adds (``playlist:approve``, ``playlist:repeat``, ``room:remove``'s ``everywhere``,
``playlist:ready``'s ``item_id``)."""


def _exactly_one(event: str, base: Fields, *names: str) -> st.SearchStrategy[dict[str, Any]]:
    """``event``'s payloads with exactly one of ``names`` mostly, sometimes none or all."""
    optional = SPECS[event][1]
    rest = {k: v for k, v in optional.items() if k not in names}
    one = [st.fixed_dictionaries({**base, n: optional[n]}, optional=rest) for n in names]
    every = {**base, **{n: optional[n] for n in names}}
    return weighted(
        *((3, variant) for variant in one),
        (1, st.fixed_dictionaries(dict(base), optional=rest)),
        (1, st.fixed_dictionaries(every, optional=rest)),
    )


EXCLUSIVE: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "playlist:add": _exactly_one("playlist:add", {"room_id": room_ids}, "url", "media_id"),
    "room:report": _exactly_one(
        "room:report", {"room_id": room_ids, "reason": texts()}, "user_id", "question_id"
    ),
}
"""Events whose fields exclude one another."""


@dataclass(frozen=True, slots=True)
class Mutation:
    op: str  # drop | extra | retype
    index: int
    key: str
    value: Any


mutations = st.builds(
    Mutation,
    st.sampled_from(["drop", "extra", "retype", "retype"]),
    st.integers(0, 5),
    st.one_of(st.sampled_from(["room_id", "user_id", "extra", "__proto__", "ok"]), st.text()),
    junk,
)


def _mutate(payload: dict[str, Any], changes: Sequence[Mutation]) -> dict[str, Any]:
    out = dict(payload)
    for m in changes:
        keys = list(out)
        if m.op == "extra" or not keys:
            out[m.key if m.key not in out else m.key + "_"] = m.value
        elif m.op == "drop":
            del out[keys[m.index % len(keys)]]
        else:
            out[keys[m.index % len(keys)]] = m.value
    return out


def valid_payloads(event: str) -> st.SearchStrategy[dict[str, Any]]:
    """Well-typed payloads: the ids in them may still name what the event cannot act on."""
    if event in EXCLUSIVE:
        return EXCLUSIVE[event]
    required, optional = SPECS.get(event, ROOM_ONLY)
    return st.fixed_dictionaries(dict(required), optional=dict(optional))


def payloads(event: str) -> st.SearchStrategy[Any]:
    """Mostly well-typed payloads, then mutated ones (a field dropped, added or of the wrong
    type), then junk of any shape."""
    valid = valid_payloads(event)
    return weighted(
        (14, valid),
        (3, st.builds(_mutate, valid, st.lists(mutations, min_size=1, max_size=3))),
        (1, junk),
        (1, deep),
        (1, arguments),
    )


def calls(events: Sequence[str]) -> st.SearchStrategy[Call]:
    return st.sampled_from(events).flatmap(lambda e: st.builds(Call, st.just(e), payloads(e)))


def junk_calls(events: Sequence[str]) -> st.SearchStrategy[Call]:
    """Unknown events with plausible payloads, known events with nothing plausible."""
    return st.one_of(
        st.builds(Call, st.sampled_from(events), st.one_of(valid_payloads("room:join"), junk)),
        st.builds(Call, st.sampled_from(tuple(SPECS)), st.one_of(junk, deep, arguments)),
    )


ROOM_EVENTS = (
    "room:join",  # first: hypothesis's simplest examples send it
    *(e for e in SPECS if e.startswith(("room:", "user:")) and e != "room:join"),
)
STAGE_EVENTS = tuple(e for e in SPECS if e.startswith(("stage:", "rtc:", "react")))
QA_EVENTS = ("qa:ask", "qa:ask", "qa:ask", "qa:approve", *(e for e in SPECS if e[:3] == "qa:"))
PLAYLIST_EVENTS = (
    *("playlist:add", "playlist:add", "playlist:add"),
    *(e for e in SPECS if e.startswith("playlist:")),
    "time:sync",
)
"""Events are grouped (one rule each); those that make questions and playlist items come more
often than those that need one."""
UNKNOWN_EVENTS = (
    "",
    "room",
    "room:joinx",
    "ROOM:JOIN",
    "room:join ",
    "stage:promote",
    "__proto__",
    "x" * 300,
)
any_call = calls(("room:join", *(e for e in SPECS if e not in {"room:join", "room:create"})))
"""Any event but ``room:create`` (a real-time mixer each): what bursts and races send."""
slots = st.sampled_from((*STAFF_SLOTS, *range(len(SLOTS))))
"""Any socket, the staff's twice as often (most events need some authority)."""

ACK_EXTRAS: dict[str, tuple[str, ...]] = {
    "room:create": ("room",),
    "room:start": ("room",),
    "room:update": ("room",),
    "room:join": ("room", "media"),
    "room:members": ("members", "cursor"),
    "rtc:offer": ("sdp", "type"),
    "qa:ask": ("question",),
    "qa:list": ("questions", "pinned", "version"),
    "playlist:add": ("item",),
    "playlist:play": ("playback",),
    "playlist:pause": ("playback",),
    "playlist:seek": ("playback",),
    "playlist:next": ("playback",),
    "playlist:previous": ("playback",),
    "time:sync": ("t1", "t2"),
    "user:block": ("blocked",),
    "user:blocks": ("blocked",),
}
"""What PROTOCOL.md says an accepted event's ack carries."""
SNAPSHOT_KEYS = frozenset(PROTOCOL_FIELDS)

# --- what a run collects -------------------------------------------------------------------------


class ServerLog(logging.Handler):
    """ERROR records of every logger while installed, and the exceptions the event loop saw
    nobody retrieve."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.problems: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.problems.append(self.format(record))

    def loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        what = context.get("exception") or context.get("task") or context.get("future")
        self.problems.append(f"event loop: {context.get('message')}: {what!r:.500}")

    def take(self) -> list[str]:
        problems, self.problems = self.problems, []
        return problems


@dataclass
class FuzzStats:
    """What the runs did, over every example."""

    examples: int = 0
    steps: int = 0
    acks: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(event, ``ok`` or the error code) → count; unknown events count as ``(unknown)``."""
    closed_by_size: int = 0
    reconnects: int = 0

    def count(self, event: str, ack: Mapping[str, Any]) -> None:
        name = event if event in SPECS else "(unknown)"
        code = "ok" if ack.get("ok") is True else str(ack.get("error", {}).get("code"))
        self.acks[(name, code)] += 1

    def ok_events(self) -> set[str]:
        return {e for (e, c) in self.acks if c == "ok"}

    def answered_events(self) -> set[str]:
        return {e for (e, _) in self.acks}


@dataclass(frozen=True)
class FuzzOptions:
    known_defects: bool = False
    """Do not steer clear of :data:`KNOWN_DEFECTS` (the run then fails on them)."""


class FuzzFailure(AssertionError):
    """An invariant or an ack that is wrong."""


# --- the machine ---------------------------------------------------------------------------------


class LiveroomFuzz(RuleBasedStateMachine):
    """Several real clients against one real server (a fresh one per example)."""

    options: ClassVar[FuzzOptions] = FuzzOptions()
    stats: ClassVar[FuzzStats] = FuzzStats()

    def __init__(self) -> None:
        super().__init__()
        self.log = ServerLog()
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(self.log.loop_exception)
        logging.getLogger().addHandler(self.log)
        self.tmp = Path(tempfile.mkdtemp(prefix="liveroom-fuzz-"))
        self.clock = FakeClock(start_ms=time.time_ns() // 1_000_000)
        self.clients: list[LiveroomClient | None] = [None] * len(SLOTS)
        self.sids: list[str | None] = [None] * len(SLOTS)
        self.joined: list[set[str]] = [set() for _ in SLOTS]
        """The rooms each socket is in, by the acks its events got."""
        self.rooms: list[str] = []
        self.questions: list[str] = []
        self.items: list[str] = []
        self.server_banned: set[str] = set()
        self.sdps: dict[str, str] = {}
        self.macros: Counter[str] = Counter()
        """How often each costly rule ran in this example (they run at most a few times)."""
        self.trace: deque[str] = deque(maxlen=60)
        """The last steps and events, for a failure that does not replay (timing)."""
        self.server: RunningServer | None = None
        self.stats.examples += 1
        try:
            self.server = self._run(start_server(self._config(), clock=self.clock))
            self._run(self._open_all())
        except BaseException:
            self.teardown()
            raise

    def _config(self) -> Config:
        raised = RateLimit(1_000_000_000, 1)
        return Config(
            host="127.0.0.1",
            port=0,
            data_dir=self.tmp / "data",
            secret=SECRET,
            rate_limits=dict.fromkeys(DEFAULT_RATE_LIMITS, raised),
            shutdown_timeout_s=1.0,
            speaker_grace_s=SPEAKER_GRACE_S,
            host_grace_s=HOST_GRACE_S,
            socket_inflight_limit=64,
        )

    # --- the private loop ------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(coro, STEP_TIMEOUT_S))

    def _step(self, coro: Coroutine[Any, Any, Any]) -> None:
        """One rule's work, after taking note of sockets the server closed meanwhile."""
        self.stats.steps += 1
        self.trace.append(getattr(coro, "__name__", "step"))

        async def step() -> None:
            await self._reap()
            await coro

        self._traced(step())

    def _traced(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            self._run(coro)
        except FuzzFailure as e:
            raise FuzzFailure(f"{e}\nthe last steps:\n" + "\n".join(self.trace)) from None

    def teardown(self) -> None:
        """Close the clients, stop the server (which must log no error doing so), close the
        loop."""
        loop = self.loop
        try:
            if not loop.is_closed():
                self.log.take()  # a failing step's records were reported with it
                loop.run_until_complete(self._close_all())
                logged = self.log.take()
                if logged:
                    raise FuzzFailure("the server logged errors stopping:\n" + "\n".join(logged))
        finally:
            try:
                if not loop.is_closed():
                    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                    for task in pending:
                        task.cancel()
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                    loop.run_until_complete(loop.shutdown_asyncgens())
                    loop.run_until_complete(loop.shutdown_default_executor())
                    loop.close()
            finally:
                logging.getLogger().removeHandler(self.log)
                shutil.rmtree(self.tmp, ignore_errors=True)

    async def _close_all(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients if c is not None))
        if self.server is not None:
            await self.server.stop()

    async def _eventually(self, ok: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while not ok():
            if time.monotonic() > deadline:
                raise FuzzFailure(what)
            await asyncio.sleep(0.002)

    @property
    def app(self) -> Any:
        assert self.server is not None
        return self.server.app

    def user(self, slot: int) -> FuzzUser:
        return USERS[SLOTS[slot]]

    def slots_of(self, user_id: str) -> list[int]:
        return [s for s in range(len(SLOTS)) if self.user(s).id == user_id]

    # --- connections -----------------------------------------------------------------------------

    async def _open_all(self) -> None:
        for slot in range(len(SLOTS)):
            await self._open(slot)

    async def _open(self, slot: int) -> None:
        user = self.user(slot)
        assert self.server is not None
        try:
            client = await LiveroomClient.connect(self.server.url, user.token(self.clock))
        except Refused as e:
            if not await self._banned_everywhere(user.id):
                raise FuzzFailure(f"{user.id}'s connection was refused: {e.reason}") from None
            self.server_banned.add(user.id)  # by an event whose ack did not arrive
            return
        if user.id in self.server_banned:
            await client.close()
            raise FuzzFailure(f"{user.id} is banned server-wide, yet connected")
        self.clients[slot] = client
        self.sids[slot] = client.sio.get_sid()
        self.joined[slot] = set()

    async def _banned_everywhere(self, user_id: str) -> bool:
        try:
            await self.app[ROOMS].admit(Identity(user_id, user_id, False, None, Grants(), False))
        except LiveroomError:
            return True
        return False

    async def _close(self, slot: int) -> None:
        client, sid = self.clients[slot], self.sids[slot]
        if client is None or sid is None:
            return
        await client.close()
        self._forget(slot)
        await self._gone(sid)

    def _forget(self, slot: int) -> None:
        self.clients[slot] = None
        self.sids[slot] = None
        self.joined[slot] = set()

    async def _gone(self, sid: str) -> None:
        """Wait until the server has seen ``sid`` close (its disconnect hooks ran)."""
        connections = self.app[SIGNALING].connections
        presence = self.app[ROOMS].presence
        await self._eventually(
            lambda: sid not in connections and not presence.rooms_of(sid),
            f"socket {sid} closed, but the server still has it",
        )

    async def _reap(self) -> None:
        """Forget the sockets the server closed (a server-wide ban, a frame over the limit)."""
        for slot, client in enumerate(self.clients):
            sid = self.sids[slot]
            if client is not None and sid is not None and client.disconnected.is_set():
                self._forget(slot)
                await self._gone(sid)

    async def _resync(self) -> None:
        """After events whose acks raced (or never came), the order the server ran them in
        decides who is where: take the server's presence for our sockets (the invariants still
        check that it is sane)."""
        await self._reap()
        presence = self.app[ROOMS].presence
        for slot, sid in enumerate(self.sids):
            if sid is not None:
                self.joined[slot] = {r for r in presence.rooms_of(sid) if r in self.rooms}

    # --- payloads --------------------------------------------------------------------------------

    async def _resolved(self, payload: Any, slot: int) -> Any:
        if "sdp-" in repr(payload):
            await self._real_offers()
        return self._resolve(payload, slot)

    def _resolve(self, value: Any, slot: int) -> Any:
        if isinstance(value, Ref):
            return self._ref(value, slot)
        if isinstance(value, Args):
            return Args(tuple(self._resolve(v, slot) for v in value.values))
        if isinstance(value, dict):
            return {k: self._resolve(v, slot) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, slot) for v in value]
        return value

    def _ref(self, ref: Ref, slot: int) -> Any:
        def newest(known: list[str]) -> str:
            return known[-1 - ref.index % len(known)] if known else HEX_ID

        rooms = self.app[ROOMS]
        match ref.kind:
            case "room":
                return newest([r for r in self.rooms if rooms.get(r) is not None] or self.rooms)
            case "ended":
                return newest([r for r in self.rooms if rooms.get(r) is None])
            case "question":
                return newest(self.questions)
            case "item":
                return newest(self.items)
            case "user":
                return USERS[ref.index % len(USERS)].id
            case "self":
                return self.user(slot).id
            case "at":
                return self.clock.now_ms() + ref.index
            case _:
                return self.sdps[ref.kind]

    async def _real_offers(self) -> None:
        """Real WebRTC offers (made once per example, on first use)."""
        for direction in ("sendrecv", "recvonly"):
            if f"sdp-{direction}" not in self.sdps:
                pc = RTCPeerConnection()
                pc.addTransceiver("audio", direction=direction)
                await pc.setLocalDescription(await pc.createOffer())
                self.sdps[f"sdp-{direction}"] = pc.localDescription.sdp
                await pc.close()

    def _allowed(self, call: Call, *, racing: bool) -> Call:
        """Without :attr:`FuzzOptions.known_defects`, keep clear of their inputs. ``racing``:
        the event may run while other events do, or while its socket closes."""
        if self.options.known_defects:
            return call
        # No defect is known now. One found is narrowed here, e.g. an event sent only when not
        # ``racing``.
        return call

    # --- sending ---------------------------------------------------------------------------------

    async def _send(self, slot: int, call: Call, *, alone: bool) -> dict[str, Any] | None:
        """Send ``call`` from ``slot`` (connecting it first if needed), check the ack, follow
        what it did. ``alone``: nothing else runs meanwhile, so a refusal must change nothing.

        Returns the ack, or ``None`` when nothing was answered: the user is banned server-wide,
        or the frame was over the size limit (then the connection must have closed)."""
        if self.clients[slot] is None:
            await self._open(slot)
            self.stats.reconnects += 1
        client = self.clients[slot]
        if client is None:
            return None
        call = self._allowed(call, racing=not alone)
        if call.event == "room:create":
            await self._make_room_for_one_more()
        payload = await self._resolved(call.payload, slot)
        data: Any = payload.values if isinstance(payload, Args) else payload
        size = _frame_size(call.event, data)
        if FRAME_LIMIT - 16 < size <= FRAME_LIMIT + 16:
            return None  # too close to call: where exactly the limit lies is Engine.IO's business
        before = self._snapshot() if alone else None
        if not alone:
            self.trace.append(f"  {self.user(slot).id}#{slot} sends {call.event} {payload!r:.80}")
        args = await self._ask(client, call.event, data)
        if size > FRAME_LIMIT:
            if args is not None:
                raise FuzzFailure(f"{call.event}: a {size}-byte frame was answered: {args!r:.200}")
            self.stats.closed_by_size += 1
            await self._reap()
            return None
        if args is None:
            if not alone and await self._banned_everywhere(self.user(slot).id):
                await self._reap()  # banned by another event of the burst
                return None
            raise FuzzFailure(f"{call.event}: the connection closed instead of answering")
        problems = ack_problems(call.event, args, strict_json=_strict_json(payload))
        if problems:
            raise FuzzFailure(f"{call.event} {payload!r:.300}: {'; '.join(problems)}")
        ack: dict[str, Any] = args[0]
        self._note(slot, call.event, payload, ack)
        if ack["ok"]:
            await self._accepted(slot, call.event, payload, ack, alone=alone)
        elif before is not None and (after := self._snapshot()) != before:
            raise FuzzFailure(
                f"{call.event} {payload!r:.300} was refused ({ack['error']}), "
                f"but changed {_diff(before, after)}"
            )
        return ack

    def _note(self, slot: int, event: str, payload: Any, ack: dict[str, Any]) -> None:
        self.stats.count(event, ack)
        outcome = "ok" if ack["ok"] else ack["error"]["code"]
        self.trace.append(f"  {self.user(slot).id}#{slot} {event} {payload!r:.100} → {outcome}")

    async def _ask(self, client: LiveroomClient, event: str, data: Any) -> tuple[Any, ...] | None:
        """Emit and wait for the ack's arguments; ``None`` when the connection closed first."""
        answered: asyncio.Future[tuple[Any, ...]] = self.loop.create_future()

        def on_ack(*args: Any) -> None:
            if answered.done():
                self.log.problems.append(f"{event}: acknowledged twice")
            else:
                answered.set_result(args)

        await client.sio.emit(event, data, callback=on_ack)
        closed: asyncio.Future[Any] = asyncio.ensure_future(client.disconnected.wait())
        try:
            done, _ = await asyncio.wait(
                {answered, closed}, timeout=ACK_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            closed.cancel()
        if answered in done:
            return answered.result()
        if not done:
            raise FuzzFailure(f"{event}: no ack within {ACK_TIMEOUT_S} s")
        return None

    async def _accepted(
        self, slot: int, event: str, sent: Any, ack: dict[str, Any], *, alone: bool
    ) -> None:
        """Follow what an accepted event did to who is where, and to the ids we know. (An event
        that needs no field is accepted with no payload at all: ``Args(())``.)"""
        payload: dict[str, Any] = sent if isinstance(sent, dict) else {}
        room_id = str(payload.get("room_id"))
        match event:
            case "room:create":
                self.rooms.append(ack["room"]["id"])
            case "room:join":
                self.joined[slot].add(room_id)
            case "room:leave":
                self.joined[slot].discard(room_id)
            case "room:remove" if payload.get("everywhere"):
                await self._banned(payload["user_id"])
            case "room:remove":
                for s in self.slots_of(payload["user_id"]):
                    self.joined[s].discard(room_id)
            case "qa:ask":
                self.questions.append(ack["question"]["id"])
            case "playlist:add":
                self.items.append(ack["item"]["id"])
        room = ack.get("room")
        if alone and isinstance(room, dict) and room.get("id") in self.rooms:
            present = self.app[ROOMS].presence.count(room["id"])
            if room["listener_count"] != present:
                raise FuzzFailure(f"{event}: listener_count {room['listener_count']}, {present=}")

    async def _banned(self, user_id: str) -> None:
        """A server-wide ban: every socket of the user is closed by the server."""
        self.server_banned.add(user_id)
        for slot in self.slots_of(user_id):
            self.joined[slot] = set()
            client = self.clients[slot]
            if client is not None:
                await self._eventually(
                    client.disconnected.is_set, f"{user_id} is banned server-wide, yet connected"
                )
        await self._reap()

    async def _make_room_for_one_more(self) -> None:
        rooms = self.app[ROOMS]
        open_rooms = [r for r in self.rooms if rooms.get(r) is not None]
        for room_id in open_rooms[: max(0, len(open_rooms) - MAX_OPEN_ROOMS + 1)]:
            state = rooms.get(room_id)
            if state is not None:
                with contextlib.suppress(LiveroomError):
                    await rooms.apply(room_id, EndRoom(), Actor(state.host, state.host))

    def _snapshot(self) -> dict[str, Any]:
        rooms = self.app[ROOMS]
        return {
            room_id: (
                rooms.get(room_id),
                frozenset((m.user_id, frozenset(m.sids)) for m in rooms.presence.members(room_id)),
            )
            for room_id in self.rooms
        }

    async def _settle(self) -> None:
        """Wait until the grace periods that ran out have been applied. A tick that waited on
        SQL sleeps again from the fake clock's new time: nudge it along."""
        rooms = self.app[ROOMS]

        def due() -> bool:
            now = self.clock.now_ms()
            states = (rooms.get(r) for r in self.rooms)
            deadlines = (model.next_deadline(s) for s in states if s is not None)
            return any(d is not None and d <= now for d in deadlines)

        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while due():
            if time.monotonic() > deadline:
                raise FuzzFailure("grace periods that ran out were not applied")
            await asyncio.sleep(0.002)
            await self.clock.advance(0.1)

    # --- rules -----------------------------------------------------------------------------------

    @initialize(title=texts(10), audience=st.integers(0, len(SLOTS)))
    def open_a_room(self, title: str, audience: int) -> None:
        """Start where things happen: host1 opens a live room, the first sockets join it."""

        async def populated() -> None:
            await self._go_live(0, title)
            for slot in range(1, audience):
                await self._send(slot, Call("room:join", {"room_id": Ref("room", 0)}), alone=True)

        self._step(populated())

    async def _go_live(self, slot: int, title: str) -> None:
        title = title if title.strip() and len(title) <= 120 else "Live"
        ack = await self._send(slot, Call("room:create", {"title": title}), alone=True)
        if ack is not None and ack["ok"]:
            await self._send(slot, Call("room:join", {"room_id": Ref("room", 0)}), alone=True)

    @rule(slot=slots, call=calls(ROOM_EVENTS))
    def send_room_event(self, slot: int, call: Call) -> None:
        self._step(self._send(slot, call, alone=True))

    @rule(slot=slots, call=calls(STAGE_EVENTS))
    def send_stage_event(self, slot: int, call: Call) -> None:
        self._step(self._send(slot, call, alone=True))

    @rule(slot=slots, call=calls(QA_EVENTS))
    def send_qa_event(self, slot: int, call: Call) -> None:
        self._step(self._send(slot, call, alone=True))

    @rule(slot=slots, call=calls(PLAYLIST_EVENTS))
    def send_playlist_event(self, slot: int, call: Call) -> None:
        self._step(self._send(slot, call, alone=True))

    @rule(slot=slots, call=junk_calls((*UNKNOWN_EVENTS, *RESERVED_EVENTS)))
    def send_junk(self, slot: int, call: Call) -> None:
        self._step(self._send(slot, call, alone=True))

    @rule(slot=slots, room=_refs("room"), market=st.none() | markets)
    def join(self, slot: int, room: Ref, market: str | None) -> None:
        payload: dict[str, Any] = {"room_id": room}
        if market is not None:
            payload["market"] = market
        self._step(self._send(slot, Call("room:join", payload), alone=True))

    @precondition(lambda self: self.macros["go_live"] < MACRO_RUNS)
    @rule(slot=st.sampled_from(STAFF_SLOTS), title=texts(10))
    def go_live(self, slot: int, title: str) -> None:
        self.macros["go_live"] += 1
        self._step(self._go_live(slot, title))

    @precondition(lambda self: self.macros["crowd"] < MACRO_RUNS)
    @rule(staff=st.sampled_from(STAFF_SLOTS), room=_refs("room"), invite=bools)
    def crowd_the_stage(self, staff: int, room: Ref, invite: bool) -> None:
        """Every fan joins and raises a hand; a staff member approves (or invites, some as
        co-hosts) every one of them: the seat limits are reached."""
        self.macros["crowd"] += 1

        async def crowd() -> None:
            for slot in FAN_SLOTS:
                await self._send(slot, Call("room:join", {"room_id": room}), alone=True)
                await self._send(slot, Call("stage:request", {"room_id": room}), alone=True)
            for slot in FAN_SLOTS:
                target = {"room_id": room, "user_id": self.user(slot).id}
                if not invite:
                    await self._send(staff, Call("stage:approve", target), alone=True)
                    continue
                role = "cohost" if slot % 4 == 0 else "speaker"
                await self._send(staff, Call("stage:invite", {**target, "role": role}), alone=True)
                await self._send(slot, Call("stage:accept", {"room_id": room}), alone=True)

        self._step(crowd())

    @precondition(lambda self: self.macros["warm_up"] < MACRO_RUNS)
    @rule(
        staff=st.sampled_from(STAFF_SLOTS),
        room=_refs("room"),
        askers=st.lists(st.sampled_from(FAN_SLOTS), min_size=1, max_size=3, unique=True),
        url=st.sampled_from(["https://example.com/a.mp3", "https://example.com/b.ogg"]),
    )
    def questions_and_music(self, staff: int, room: Ref, askers: list[int], url: str) -> None:
        """Fans ask, the staff approves and one fan votes; the staff queues a song and plays
        it: questions and playlist items for the other events to act on."""
        self.macros["warm_up"] += 1

        async def warm_up() -> None:
            here = {"room_id": room}
            for slot in (staff, *askers):
                await self._send(slot, Call("room:join", here), alone=True)
            for slot in askers:
                text = f"Question {len(self.questions)} from {self.user(slot).id}?"
                await self._send(slot, Call("qa:ask", {**here, "text": text}), alone=True)
            for index in range(len(askers)):
                question = {"question_id": Ref("question", index)}
                await self._send(staff, Call("qa:approve", question), alone=True)
                await self._send(askers[0], Call("qa:vote", question), alone=True)
            await self._send(staff, Call("playlist:add", {**here, "url": url}), alone=True)
            await self._send(staff, Call("playlist:play", here), alone=True)

        self._step(warm_up())

    @rule(calls=st.lists(st.tuples(slots, any_call), min_size=2, max_size=5))
    def burst(self, calls: list[tuple[int, Call]]) -> None:
        """Several events at once, from several sockets or one: races."""

        async def burst() -> None:
            for slot, _ in calls:  # opening sockets is not what races here
                if self.clients[slot] is None:
                    await self._open(slot)
            await asyncio.gather(*(self._send(s, c, alone=False) for s, c in calls))
            await self._resync()

        self._step(burst())

    @rule(slot=slots, call=any_call)
    def send_while_dropping(self, slot: int, call: Call) -> None:
        """An event racing its own socket's close: answered or not, nothing is left behind."""

        async def race() -> None:
            if self.clients[slot] is None:
                await self._open(slot)
            client, sid = self.clients[slot], self.sids[slot]
            conn = self.app[SIGNALING].connections.get(sid)
            if client is None or sid is None or conn is None:
                return
            allowed = self._allowed(call, racing=True)
            payload = await self._resolved(allowed.payload, slot)
            data = payload.values if isinstance(payload, Args) else payload
            if _frame_size(allowed.event, data) < FRAME_LIMIT - 16:
                await client.sio.emit(allowed.event, data, callback=lambda *_: None)
            await asyncio.sleep(0)
            await client.close()
            self._forget(slot)
            await self._gone(sid)
            # The event may still run, its ack going nowhere: let it finish, see what it did.
            await self._eventually(lambda: conn.inflight == 0, "an event never finished")
            await self._resync()

        self._step(race())

    @rule(slot=slots)
    def drop_connection(self, slot: int) -> None:
        self._step(self._close(slot))

    @rule(slot=slots)
    def reconnect(self, slot: int) -> None:
        async def again() -> None:
            await self._close(slot)
            await self._open(slot)
            self.stats.reconnects += 1

        self._step(again())

    @rule(slot=slots, size=st.integers(FRAME_LIMIT + 100, FRAME_LIMIT * 2))
    def oversize_frame(self, slot: int, size: int) -> None:
        """A frame over Engine.IO's limit closes that connection, and only that one."""
        self._step(self._send(slot, Call("room:join", {"room_id": "x" * size}), alone=True))

    @rule(seconds=st.sampled_from([0.15, 1.0, SPEAKER_GRACE_S + 1, HOST_GRACE_S + 1]))
    def time_passes(self, seconds: float) -> None:
        """Fake time: grace periods of dropped speakers and hosts run out."""

        async def later() -> None:
            await self.clock.advance(seconds)
            await self._settle()

        self._step(later())

    # --- invariants ------------------------------------------------------------------------------

    @invariant()
    def the_server_is_consistent(self) -> None:
        self._traced(self._check())

    async def _check(self) -> None:
        """Every invariant, given up to :data:`SETTLE_TIMEOUT_S` to hold: a socket's close and
        a room's end finish on the server after the step that caused them."""
        await self._reap()
        logged = self.log.take()
        if logged:
            raise FuzzFailure("the server logged errors:\n" + "\n".join(logged))
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while problems := [p for room_id in self.rooms for p in self._room_problems(room_id)]:
            if time.monotonic() > deadline:
                raise FuzzFailure("\n".join(problems))
            await asyncio.sleep(0.005)

    def _room_problems(self, room_id: str) -> list[str]:
        rooms = self.app[ROOMS]
        state: RoomState | None = rooms.get(room_id)
        members = list(rooms.presence.members(room_id))
        present = {m.user_id for m in members}
        media = self.app[AUDIO].engine.room(room_id)
        peers = set(media.peers) if media is not None else set()
        if state is None:
            if members or rooms.presence.count(room_id) or peers:
                return [f"{room_id} ended, yet has members {present} and peers {peers}"]
            return []
        banned = {u.id for u in USERS if rooms.is_banned(state, u.id)}
        problems = stage_problems(state, banned)
        problems += self._presence_problems(state, members)
        away = {a.user_id for a in state.away}
        seated = {*state.cohosts, *state.moderators, *state.speakers}
        if state.status is RoomStatus.LIVE:
            seated.add(state.host)
        for what, users in (
            ("banned, yet present", present & banned),
            ("present, yet held as away", present & away),
            ("on stage, neither present nor away", seated - present - away),
            ("raising a hand, not present", set(state.requests) - present),
            ("media peers, not present", peers - present),
        ):
            if users:
                problems.append(f"{what}: {sorted(users)}")
        return [f"{room_id}: {p}" for p in problems]

    def _presence_problems(self, state: RoomState, members: list[Any]) -> list[str]:
        rooms, connections = self.app[ROOMS], self.app[SIGNALING].connections
        present = {m.user_id for m in members}
        problems: list[str] = []
        if rooms.presence.count(state.id) != len(present) or len(members) != len(present):
            problems.append(f"count {rooms.presence.count(state.id)}, members {members}")
        listeners = rooms.view_for(state, None)["listener_count"]
        if listeners != len(present):
            problems.append(f"listener_count {listeners}, {len(present)} present")
        ours = set(self.sids)
        for m in members:
            conns = [connections.get(sid) for sid in m.sids]
            if not m.sids or any(c is None or c.identity.user_id != m.user_id for c in conns):
                problems.append(f"{m.user_id} present on sockets {m.sids} that are not theirs")
            if not m.sids <= ours:
                problems.append(f"{m.user_id} present on sockets we closed: {m.sids - ours}")
        expected = {
            self.user(s).id
            for s, sid in enumerate(self.sids)
            if sid is not None and state.id in self.joined[s]
        }
        if present != expected:
            problems.append(f"present {sorted(present)}, the acks say {sorted(expected)}")
        return problems


# --- the checks ----------------------------------------------------------------------------------


def stage_problems(state: RoomState, banned: Iterable[str]) -> list[str]:
    """What is wrong with an open room's stage, whatever happened before."""
    banned = set(banned)
    problems = _role_problems(state)
    for role, cap in CAPS.items():
        held = {Role.COHOST: state.cohosts, Role.MODERATOR: state.moderators}.get(
            role, state.speakers
        )
        taken = set(held) | {i.user_id for i in state.invites if i.role is role}
        taken |= {a.user_id for a in state.staff_assignments if a.role is role}
        if len(taken) > cap:
            problems.append(f"{len(held)} {role}s, {len(taken)} {role} seats taken (of {cap})")
    stage = {state.host, *state.cohosts, *state.speakers}
    if not state.muted <= stage:
        problems.append(f"muted, not on stage: {sorted(state.muted - stage)}")
    seated = {state.host, *state.cohosts, *state.moderators, *state.speakers}
    claims = seated | set(state.requests) | {i.user_id for i in state.invites}
    if claims & banned:
        problems.append(f"banned, with a seat, hand or invitation: {sorted(claims & banned)}")
    if {a.user_id for a in state.staff_assignments} & state.banned:
        problems.append("banned, yet pre-assigned as staff")
    if len(set(state.requests)) != len(state.requests) or set(state.requests) & seated:
        problems.append(f"hand queue {state.requests}")
    invited = [i.user_id for i in state.invites]
    if len(set(invited)) != len(invited):
        problems.append(f"two invitations for one user: {state.invites}")
    for invitation in state.invites:
        current = model.role_of(state, invitation.user_id) or Role.LISTENER
        if invitation.role.rank <= current.rank:
            problems.append(f"{invitation.user_id} invited as {invitation.role}, is {current}")
    unseated = [a.user_id for a in state.away if model.role_of(state, a.user_id) is None]
    if unseated:
        problems.append(f"held as away without a seat: {unseated}")
    return problems


def _role_problems(state: RoomState) -> list[str]:
    """One host; nobody listed twice or in two roles."""
    if state.status is not RoomStatus.SCHEDULED and state.status is not RoomStatus.LIVE:
        return [f"an open room is {state.status}"]
    problems = [] if state.host else ["no host"]
    seen: dict[str, str] = {}
    for role, users in (
        ("host", (state.host,)),
        ("cohost", state.cohosts),
        ("moderator", state.moderators),
        ("speaker", state.speakers),
    ):
        for user in users:
            if user in seen:
                problems.append(f"{user} is {seen[user]} and {role}")
            seen[user] = role
    return problems


def ack_problems(event: str, args: tuple[Any, ...], *, strict_json: bool) -> list[str]:
    """What is wrong with the arguments ``event`` was acknowledged with."""
    if len(args) != 1 or not isinstance(args[0], dict):
        return [f"the ack is not one object: {args!r:.300}"]
    ack = args[0]
    problems: list[str] = []
    if strict_json:  # whatever a client sent as JSON, the answer is JSON a browser can parse
        try:
            json.dumps(ack, allow_nan=False)
        except ValueError as e:
            problems.append(f"the ack is not JSON: {e}")
    if ack.get("ok") is True:
        return problems + _accepted_problems(event, ack)
    if ack.get("ok") is not False or set(ack) != {"ok", "error"}:
        return [*problems, f"neither accepted nor refused: {ack!r:.300}"]
    return problems + _refusal_problems(ack["error"])


def _accepted_problems(event: str, ack: dict[str, Any]) -> list[str]:
    problems = ["accepted with an error"] if "error" in ack else []
    missing = [k for k in ACK_EXTRAS.get(event, ()) if k not in ack]
    if missing:
        problems.append(f"accepted without {missing}: {ack!r:.300}")
    if event in ACK_EXTRAS and "room" in ack:
        problems += snapshot_problems(ack["room"])
    return problems


def _refusal_problems(error: Any) -> list[str]:
    if not isinstance(error, dict):
        return [f"error is not an object: {error!r:.200}"]
    code, message = error.get("code"), error.get("message")
    problems = [] if code in ERROR_CODES else [f"unknown error code {code!r}"]
    if code == "internal":
        problems.append(f"internal error: {message}")
    if not isinstance(message, str) or not message:
        problems.append(f"error without a message: {error!r}")
    retry = error.get("retry_after")
    if code == "rate_limited" and not (isinstance(retry, int | float) and retry > 0):
        problems.append(f"rate_limited without retry_after: {error!r}")
    return problems


def snapshot_problems(room: Any) -> list[str]:
    """What is wrong with a room snapshot (PROTOCOL.md's shape, its limits)."""
    if not isinstance(room, dict) or not set(room) >= SNAPSHOT_KEYS:
        return [f"not a room snapshot: {room!r:.300}"]
    problems = []
    if room["status"] not in {"scheduled", "live", "ended"}:
        problems.append(f"room status {room['status']!r}")
    if not isinstance(room["host"], dict) or not {"id", "name", "verified"} <= set(room["host"]):
        problems.append(f"host is not a User: {room['host']!r}")
    count = room["listener_count"]
    if not isinstance(count, int) or count < 0:
        problems.append(f"listener_count {count!r}")
    if len(room["cohosts"]) > CAPS[Role.COHOST] or len(room["speakers"]) > CAPS[Role.SPEAKER]:
        problems.append(f"{len(room['cohosts'])} cohosts, {len(room['speakers'])} speakers")
    you = room["you"]
    if not isinstance(you, dict) or you.get("role") not in {r.value for r in Role}:
        problems.append(f"you: {you!r}")
    return problems


def _frame_size(event: str, data: Any) -> int:
    """The Engine.IO message python-socketio makes of the event (with a 3-digit ack id)."""
    args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
    return len("42999" + json.dumps([event, *args], separators=(",", ":")))


def _strict_json(value: Any) -> bool:
    try:
        json.dumps(value.values if isinstance(value, Args) else value, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return False
    return True


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    changed = [k for k in before if before[k] != after.get(k)]
    return ", ".join(f"{k}: {before[k]!r:.400} → {after.get(k)!r:.400}" for k in changed)


# --- running -------------------------------------------------------------------------------------


def machine(options: FuzzOptions, stats: FuzzStats) -> type[LiveroomFuzz]:
    """The machine, sending what ``options`` allow and counting into ``stats``."""
    return type("LiveroomFuzz", (LiveroomFuzz,), {"options": options, "stats": stats})


def run_fuzz(
    options: FuzzOptions,
    stats: FuzzStats,
    *,
    examples: int,
    steps_per_example: int,
    derandomize: bool,
    print_blob: bool = False,
    seed: int | None = None,
    shrink: bool = False,
) -> None:
    """Run ``examples`` examples of up to ``steps_per_example`` steps each; raises, with the
    failing program, on a failure. ``shrink``: make it minimal first — against a real server
    that can take an hour, so only when asked (``bench/fuzz.py --shrink``)."""
    config = settings(
        max_examples=examples,
        stateful_step_count=steps_per_example,
        deadline=None,
        derandomize=derandomize,
        database=None,
        print_blob=print_blob,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        phases=tuple(Phase) if shrink else tuple(p for p in Phase if p is not Phase.shrink),
    )
    cls = machine(options, stats)
    if seed is None:
        run_state_machine_as_test(cls, settings=config)  # type: ignore[no-untyped-call]
    else:
        test = get_state_machine_test(cls, settings=config)  # type: ignore[no-untyped-call]
        hypothesis.seed(seed)(test)()


def steps_per_second(stats: FuzzStats, seconds: float) -> float:
    return stats.steps / seconds if seconds > 0 else math.inf
