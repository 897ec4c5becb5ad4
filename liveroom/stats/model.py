"""Listener counting for one room — live, peak, unique, listening minutes — and record crossing.

Pure: time comes in as ``now_ms``, nothing is read or written. Every join and leave is O(1):
counters and a running sum of presence start times, never a scan of who is present.

Definitions (the rankings rank exactly these):

- **live**: distinct users present now, all roles. The caller reports a user's *first* socket
  joining and *last* socket leaving (what :class:`liveroom.rooms.presence.Presence` returns), and
  a join of a user already present is ignored, so several sockets count once.
- **peak**: the highest ``live`` so far, and ``peak_at``, the first time it was reached.
- **unique**: distinct user ids ever present; ``unique_at`` is when the last new one arrived.
- **listening minutes**: the sum of presence durations. Only time actually present counts.
- **signed in**: the same figures for non-guests only. A guest is a user whose token came from
  ``POST /api/tokens`` (``Identity.guest``; their ids start with ``g_``): anyone can mint those,
  so rankings show them apart (``value`` counts everyone, ``value_signed_in`` non-guests).
- **market**: pinned at a user's first join in the room (``None`` → ``unknown``). A user counts
  in one market per room, so the markets' uniques add up to the room's.

A user who leaves and comes back within ``grace_ms`` (a reconnect) continues the same *presence*
(:attr:`Figures.presences` does not grow); the gap is not listening time. Unique and peak need no
grace: they are by user id and by distinct users present, so no reconnect can count twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

UNKNOWN_MARKET = "unknown"
MS_PER_MINUTE = 60_000
DEFAULT_GRACE_MS = 10_000


class Metric(StrEnum):
    PEAK = "peak"
    UNIQUE = "unique"
    MINUTES = "minutes"


def shown(metric: Metric, value: int) -> int:
    """A metric's stored value as rankings show it: minutes are stored in milliseconds (exact, so
    ordering never loses precision) and shown in whole minutes."""
    return value // MS_PER_MINUTE if metric is Metric.MINUTES else value


def market_key(market: str | None) -> str:
    """An ISO 3166 alpha-2 code in capitals; anything else counts as ``unknown``."""
    code = (market or "").upper()
    return code if len(code) == 2 and code.isascii() and code.isalpha() else UNKNOWN_MARKET


# --- figures -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figures:
    """A room's (or one market's) counts as of some moment. Times are epoch ms."""

    peak: int = 0
    peak_signed_in: int = 0
    peak_at: int = 0
    unique: int = 0
    unique_signed_in: int = 0
    unique_at: int = 0
    listen_ms: int = 0
    listen_ms_signed_in: int = 0
    minutes_at: int = 0
    """When ``listen_ms`` last grew: now while anyone is present, else the last leave."""
    presences: int = 0

    def value(self, metric: Metric) -> int:
        """The exact value rankings order by (milliseconds for minutes)."""
        match metric:
            case Metric.PEAK:
                return self.peak
            case Metric.UNIQUE:
                return self.unique
            case Metric.MINUTES:
                return self.listen_ms

    def value_signed_in(self, metric: Metric) -> int:
        match metric:
            case Metric.PEAK:
                return self.peak_signed_in
            case Metric.UNIQUE:
                return self.unique_signed_in
            case Metric.MINUTES:
                return self.listen_ms_signed_in

    def at(self, metric: Metric) -> int:
        """When the value was reached (the tie-break: earlier wins)."""
        match metric:
            case Metric.PEAK:
                return self.peak_at
            case Metric.UNIQUE:
                return self.unique_at
            case Metric.MINUTES:
                return self.minutes_at


class Tally:
    """The counters of a room, or of one market in it. Listening time is kept as the time of
    closed presences plus ``present × now − Σ since`` for open ones, so reading it is O(1) too."""

    __slots__ = (
        "_closed_ms",
        "_closed_ms_signed_in",
        "_last_leave",
        "_since_sum",
        "_since_sum_signed_in",
        "peak",
        "peak_at",
        "peak_signed_in",
        "presences",
        "present",
        "present_signed_in",
        "unique",
        "unique_at",
        "unique_signed_in",
    )

    def __init__(self, start_ms: int, restored: Figures | None = None) -> None:
        f = restored or Figures(peak_at=start_ms, unique_at=start_ms, minutes_at=start_ms)
        self.present = 0
        self.present_signed_in = 0
        self.peak = f.peak
        self.peak_signed_in = f.peak_signed_in
        self.peak_at = f.peak_at
        self.unique = f.unique
        self.unique_signed_in = f.unique_signed_in
        self.unique_at = f.unique_at
        self.presences = f.presences
        self._closed_ms = f.listen_ms
        self._closed_ms_signed_in = f.listen_ms_signed_in
        self._since_sum = 0
        self._since_sum_signed_in = 0
        self._last_leave = f.minutes_at

    def counted(self, guest: bool, now_ms: int) -> None:
        """A user seen for the first time (unique)."""
        self.unique += 1
        self.unique_at = now_ms
        if not guest:
            self.unique_signed_in += 1

    def enter(self, guest: bool, now_ms: int, *, new_presence: bool) -> None:
        self.present += 1
        self._since_sum += now_ms
        if new_presence:
            self.presences += 1
        if self.present > self.peak:
            self.peak, self.peak_at = self.present, now_ms
        if not guest:
            self.present_signed_in += 1
            self._since_sum_signed_in += now_ms
            self.peak_signed_in = max(self.peak_signed_in, self.present_signed_in)

    def exit(self, guest: bool, since_ms: int, now_ms: int) -> None:
        self.present -= 1
        self._since_sum -= since_ms
        self._closed_ms += now_ms - since_ms
        self._last_leave = now_ms
        if not guest:
            self.present_signed_in -= 1
            self._since_sum_signed_in -= since_ms
            self._closed_ms_signed_in += now_ms - since_ms

    def figures(self, now_ms: int) -> Figures:
        return Figures(
            peak=self.peak,
            peak_signed_in=self.peak_signed_in,
            peak_at=self.peak_at,
            unique=self.unique,
            unique_signed_in=self.unique_signed_in,
            unique_at=self.unique_at,
            listen_ms=self._closed_ms + self.present * now_ms - self._since_sum,
            listen_ms_signed_in=(
                self._closed_ms_signed_in
                + self.present_signed_in * now_ms
                - self._since_sum_signed_in
            ),
            minutes_at=now_ms if self.present else self._last_leave,
            presences=self.presences,
        )


# --- one room ------------------------------------------------------------------------------------


class Arrival(StrEnum):
    """What a join was."""

    NEW = "new"
    """First time in this room: a new unique listener (to be remembered durably)."""
    RETURN = "return"
    """Seen before, away longer than the grace period: a new presence."""
    RECONNECT = "reconnect"
    """Back within the grace period: the same presence continues."""
    ALREADY = "already"
    """Already present (another socket): nothing changes."""


@dataclass(slots=True)
class _Listener:
    guest: bool
    market: str
    since: int | None = None
    """Present since (``None``: not present)."""
    left_at: int | None = None


@dataclass(frozen=True, slots=True)
class Seen:
    """A user once present in a room, as remembered durably (restores unique counts exactly)."""

    user_id: str
    guest: bool
    market: str
    first_at: int


class RoomCount:
    """Every figure of one room, kept up to date by :meth:`join` and :meth:`leave`.

    Memory is one small entry per unique user — the price of an exact unique count. Time never
    runs backwards here: an earlier ``now_ms`` than one seen before (a wall clock stepped back)
    is taken as the later one, so durations are never negative.
    """

    def __init__(
        self,
        room_id: str,
        started_at: int,
        grace_ms: int = DEFAULT_GRACE_MS,
    ) -> None:
        self.room_id = room_id
        self.started_at = started_at
        self.grace_ms = grace_ms
        self.total = Tally(started_at)
        self.markets: dict[str, Tally] = {}
        self._listeners: dict[str, _Listener] = {}
        self._now = started_at
        self.ended_at: int | None = None

    @classmethod
    def restored(
        cls,
        room_id: str,
        started_at: int,
        figures: Figures,
        markets: Mapping[str, Figures],
        seen: Iterable[Seen],
        *,
        grace_ms: int = DEFAULT_GRACE_MS,
    ) -> RoomCount:
        """A room resumed after a restart: stored figures, nobody present, and every user seen
        before remembered (they come back as returning users, not new unique ones)."""
        count = cls(room_id, started_at, grace_ms)
        count.total = Tally(started_at, figures)
        count.markets = {m: Tally(started_at, f) for m, f in markets.items()}
        for s in seen:
            count._listeners[s.user_id] = _Listener(s.guest, s.market)
        count._now = max(started_at, figures.peak_at, figures.unique_at, figures.minutes_at)
        return count

    def _tick(self, now_ms: int) -> int:
        self._now = max(self._now, now_ms)
        return self._now

    @property
    def live(self) -> int:
        return self.total.present

    def is_present(self, user_id: str) -> bool:
        listener = self._listeners.get(user_id)
        return listener is not None and listener.since is not None

    def join(self, user_id: str, *, guest: bool, market: str | None, now_ms: int) -> Arrival:
        """``user_id``'s first socket arrived. ``market`` counts only the first time."""
        if self.ended_at is not None:
            return Arrival.ALREADY
        now = self._tick(now_ms)
        listener = self._listeners.get(user_id)
        if listener is not None and listener.since is not None:
            return Arrival.ALREADY
        if listener is None:
            arrival = Arrival.NEW
            listener = self._listeners[user_id] = _Listener(guest, market_key(market))
        elif listener.left_at is not None and now - listener.left_at <= self.grace_ms:
            arrival = Arrival.RECONNECT
        else:
            arrival = Arrival.RETURN
        listener.since, listener.left_at = now, None
        tally = self.markets.get(listener.market)
        if tally is None:
            tally = self.markets[listener.market] = Tally(self.started_at)
        for t in (self.total, tally):
            if arrival is Arrival.NEW:
                t.counted(listener.guest, now)
            t.enter(listener.guest, now, new_presence=arrival is not Arrival.RECONNECT)
        return arrival

    def leave(self, user_id: str, now_ms: int) -> bool:
        """``user_id``'s last socket left; False when they were not present."""
        listener = self._listeners.get(user_id)
        if listener is None or listener.since is None:
            return False
        now = self._tick(now_ms)
        for t in (self.total, self.markets[listener.market]):
            t.exit(listener.guest, listener.since, now)
        listener.since, listener.left_at = None, now
        return True

    def end(self, now_ms: int) -> Figures:
        """The room ended: everyone leaves now; later joins are ignored. The final figures."""
        now = self._tick(now_ms)
        for user_id, listener in self._listeners.items():
            if listener.since is not None:
                self.leave(user_id, now)
        self.ended_at = now
        return self.total.figures(now)

    def figures(self, now_ms: int) -> Figures:
        return self.total.figures(self._tick(now_ms))

    def market_figures(self, now_ms: int) -> dict[str, Figures]:
        now = self._tick(now_ms)
        return {m: t.figures(now) for m, t in self.markets.items()}

    def seen(self, user_id: str) -> Seen | None:
        """How ``user_id`` is remembered (for writing a new unique listener down)."""
        listener = self._listeners.get(user_id)
        if listener is None:
            return None
        return Seen(user_id, listener.guest, listener.market, self._now)


# --- records -------------------------------------------------------------------------------------


class Scope(StrEnum):
    ALL_TIME = "all_time"
    """The best of every other room on the server."""
    HOST = "host"
    """The best of the same host's other rooms."""


@dataclass(frozen=True, slots=True)
class RecordBars:
    """The records a room may break, per metric, in exact units (ms for minutes). A metric
    missing from a scope, or at 0, has no record yet: there is nothing to break, so a new server
    or a host's first room never fires."""

    all_time: Mapping[Metric, int] = field(default_factory=dict)
    host: Mapping[Metric, int] = field(default_factory=dict)

    def of(self, scope: Scope) -> Mapping[Metric, int]:
        return self.all_time if scope is Scope.ALL_TIME else self.host


@dataclass(frozen=True, slots=True)
class RecordBroken:
    metric: Metric
    scope: Scope
    value: int
    """Both as rankings show them (whole minutes for minutes)."""
    previous: int


@dataclass(slots=True)
class RecordWatch:
    """Which records a live room has passed, so each crossing is told once.

    Passing means strictly more than the record. When one check passes both the host's record
    and the all-time one, one :class:`RecordBroken` is reported, with the wider scope; a host
    record passed first and the all-time record later are two reports.
    """

    bars: RecordBars
    fired: set[tuple[Metric, Scope]] = field(default_factory=set)

    def check(
        self, figures: Figures, metrics: Iterable[Metric] = tuple(Metric)
    ) -> list[RecordBroken]:
        broken: list[RecordBroken] = []
        for metric in metrics:
            value = figures.value(metric)
            crossed = [
                scope
                for scope in (Scope.ALL_TIME, Scope.HOST)
                if (metric, scope) not in self.fired
                and self.bars.of(scope).get(metric, 0) > 0
                and value > self.bars.of(scope)[metric]
            ]
            if not crossed:
                continue
            self.fired.update((metric, scope) for scope in crossed)
            scope = crossed[0]
            previous = self.bars.of(scope)[metric]
            broken.append(
                RecordBroken(metric, scope, shown(metric, value), shown(metric, previous))
            )
        return broken


# --- what the store keeps ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoomInfo:
    room_id: str
    host_id: str
    title: str
    market: str | None
    """The room's own market (``room:create``'s), for display; rankings filter by listeners'."""
    started_at: int


@dataclass(frozen=True, slots=True)
class RoomRecord:
    """A room's row: its figures as of ``updated_at``; ``ended_at`` is ``None`` while live."""

    info: RoomInfo
    figures: Figures
    markets: Mapping[str, Figures]
    updated_at: int
    ended_at: int | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """The live count at ``at``, and the highest it was since the previous sample."""

    room_id: str
    at: int
    listeners: int
    peak: int


@dataclass(frozen=True, slots=True)
class Batch:
    """Everything one flush writes, in one transaction."""

    samples: tuple[Sample, ...] = ()
    records: tuple[RoomRecord, ...] = ()
    seen: tuple[tuple[str, Seen], ...] = ()
    """(room_id, new unique listener)."""
    replay_plays: tuple[tuple[str, int], ...] = ()
    """(room_id, plays of its replay since the last flush)."""

    def __bool__(self) -> bool:
        return bool(self.samples or self.records or self.seen or self.replay_plays)
