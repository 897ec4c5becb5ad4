"""Live listener counts per room, sampled and written in batches, and records told once.

A join or leave is a few counter updates in memory (:class:`~liveroom.stats.model.RoomCount`),
never a write. Every ``sample_interval_s`` one flush writes, in ONE transaction for all rooms:
each live room's sample, the ``room_records`` row (and per-market rows) of every room whose
figures changed, and the users seen for the first time. Rankings therefore include live rooms,
at most one interval old, and a crash loses at most one interval. A room's end is written at
once (its own flush), so the final figures are durable when :meth:`StatsService.room_ended`
returns.

Across a restart a room carries on from its last written row, and the users it had already
seen are loaded back, so none of them counts as a new unique listener again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from liveroom.clock import Clock
from liveroom.stats.model import (
    Arrival,
    Batch,
    Figures,
    Metric,
    RecordBars,
    RecordBroken,
    RecordWatch,
    RoomCount,
    RoomInfo,
    RoomRecord,
    Sample,
    Seen,
)
from liveroom.stats.store import StatsStore
from liveroom.tasks import Periodic, Spawned

logger = logging.getLogger(__name__)

RecordListener = Callable[[str, RecordBroken], Coroutine[Any, Any, None]]
"""Told ``(room_id, record)`` when a live room passes a record (``room:record``)."""
Runs = Callable[[str], bool]

# Peak and unique move on joins, so they are checked there; minutes grow by themselves.
_ON_JOIN = (Metric.PEAK, Metric.UNIQUE)


@dataclass(frozen=True, slots=True)
class StatsConfig:
    sample_interval_s: float = 10.0
    grace_s: float = 10.0
    """A user back within this long continues their presence (a reconnect)."""
    max_pending_samples: int = 100_000
    max_pending_seen: int = 200_000
    """Bounds on what waits for the database while it is away; beyond them the oldest samples
    and the newest first sightings are dropped (and logged)."""


@dataclass(frozen=True, slots=True)
class _Event:
    """A join or leave that arrived while the room's stored figures were still loading."""

    kind: Literal["join", "leave"]
    user_id: str
    now_ms: int
    guest: bool = False
    market: str | None = None


@dataclass(slots=True)
class _Room:
    info: RoomInfo
    count: RoomCount | None = None
    """``None`` while its stored figures load; events wait in ``backlog``."""
    watch: RecordWatch = field(default_factory=lambda: RecordWatch(RecordBars()))
    backlog: list[_Event] = field(default_factory=list)
    loading: asyncio.Task[None] | None = None
    interval_peak: int = 0
    written: Figures | None = None
    written_markets: dict[str, Figures] = field(default_factory=dict)


class StatsService:
    """The one owner of live counts on this node.

    Call :meth:`room_started` when a room goes live (created live, started, or restored at
    boot), :meth:`joined` / :meth:`left` with a user's first socket in and last socket out,
    :meth:`renamed` on a new title, and :meth:`room_ended`. :meth:`start` and :meth:`stop`
    run the sampler.
    """

    def __init__(
        self,
        store: StatsStore,
        clock: Clock,
        config: StatsConfig | None = None,
        on_record: RecordListener | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self.config = config or StatsConfig()
        self._on_record = on_record
        self._grace_ms = round(self.config.grace_s * 1000)
        self._rooms: dict[str, _Room] = {}
        self._samples: list[Sample] = []
        self._seen: list[tuple[str, Seen]] = []
        self._final: dict[str, RoomRecord] = {}
        self._replay_plays: dict[str, int] = {}  # bounded by the rooms with a replay
        self._flush_lock = asyncio.Lock()
        self._tasks = Spawned("stats")
        self._sampler = Periodic("stats-sampler", self.config.sample_interval_s, self.tick, clock)
        self.runs: Runs = lambda _room_id: True
        """Several nodes: a room whose lease this node does not trust now is neither sampled nor
        written (another node may count it already); it is dropped once the loss is known."""

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._sampler.start()

    async def stop(self) -> None:
        """Stop sampling and write the current figures (live rooms stay live in SQL and carry
        on when the server comes back)."""
        await self._sampler.stop()
        for room in list(self._rooms.values()):
            if room.loading is not None:
                await asyncio.gather(room.loading, return_exceptions=True)
        try:
            await self.tick()
        except Exception:
            logger.exception("stats: the last flush failed; up to one interval is lost")
        await self._tasks.stop()

    # --- what the rooms tell ----------------------------------------------------------------------

    def room_started(
        self,
        room_id: str,
        host_id: str,
        title: str,
        *,
        market: str | None = None,
        started_at: int | None = None,
    ) -> None:
        """Count ``room_id`` from now on. Joins may follow at once: while its stored figures
        (a restart) and the records to beat load, they wait in order and are replayed."""
        if room_id in self._rooms:
            return
        info = RoomInfo(room_id, host_id, title, market, started_at or self._clock.now_ms())
        room = self._rooms[room_id] = _Room(info)
        room.loading = asyncio.create_task(self._load(room), name=f"stats-load-{room_id}")

    def joined(self, room_id: str, user_id: str, *, guest: bool, market: str | None) -> None:
        """``user_id``'s first socket joined. ``guest``: the token is a guest's
        (``Identity.guest``; for a member already present, ``user_id.startswith(GUEST_PREFIX)``
        says the same). ``market``: the presence's market, ``None`` when unknown."""
        room = self._rooms.get(room_id)
        if room is None:  # not live (a host in a scheduled room's lobby), or ended
            return
        now = self._clock.now_ms()
        if room.count is None:
            room.backlog.append(_Event("join", user_id, now, guest, market))
            return
        arrival = room.count.join(user_id, guest=guest, market=market, now_ms=now)
        if arrival is not Arrival.ALREADY:
            self._after_join(room, room.count, user_id, arrival)
            self._tell(room_id, room.watch.check(room.count.figures(now), _ON_JOIN))

    def left(self, room_id: str, user_id: str) -> None:
        """``user_id``'s last socket left the room."""
        room = self._rooms.get(room_id)
        if room is None:
            return
        if room.count is None:
            room.backlog.append(_Event("leave", user_id, self._clock.now_ms()))
            return
        room.count.leave(user_id, self._clock.now_ms())

    def renamed(self, room_id: str, title: str) -> None:
        room = self._rooms.get(room_id)
        if room is not None:
            room.info = replace(room.info, title=title)
            room.written = None  # rewrite the row at the next flush

    async def room_ended(self, room_id: str) -> None:
        """Everyone leaves now; the final figures are written before this returns (or, if the
        database is away, at the next flush that succeeds)."""
        room = self._rooms.get(room_id)
        if room is None:
            return
        if room.loading is not None:
            await asyncio.gather(room.loading, return_exceptions=True)
        if self._rooms.pop(room_id, None) is None:
            return  # ended twice meanwhile
        if room.count is None:
            logger.error(
                "stats: room %s ended before its figures could load: not recorded", room_id
            )
            return
        now = self._clock.now_ms()
        self._add_sample(Sample(room_id, now, room.count.live, room.interval_peak))
        figures = room.count.end(now)
        self._final[room_id] = RoomRecord(
            room.info, figures, room.count.market_figures(now), now, ended_at=now
        )
        logger.info(
            "stats: room %s ended: peak %d, unique %d, %d listening minutes",
            room_id,
            figures.peak,
            figures.unique,
            figures.listen_ms // 60_000,
        )
        try:
            await self.flush()
        except Exception:
            logger.exception("stats: writing the end of room %s failed; retried", room_id)

    async def moved(self, room_id: str, *, write: bool) -> None:
        """Several nodes: another node counts ``room_id`` from now on, on from the figures in
        SQL; this one stops, and never writes the room's figures again (they would overwrite
        the new node's). ``write``: handing the room over on purpose, its figures are written
        first, for the next node to carry on from; else (the lease was lost, and the node that
        has it may have carried on already) they are dropped: at most one interval of it."""
        room = self._rooms.get(room_id)
        if room is None:
            return
        if write and room.loading is not None:
            await asyncio.gather(room.loading, return_exceptions=True)
        if write:
            try:
                await self.flush()
            except Exception:
                logger.exception("stats: room %s moved before its figures were written", room_id)
        self._rooms.pop(room_id, None)
        logger.info("stats: room %s is counted on another node now", room_id)

    # --- reading --------------------------------------------------------------------------------

    def replay_played(self, room_id: str) -> None:
        """Someone started ``room_id``'s replay: counted in the next flush."""
        self._replay_plays[room_id] = self._replay_plays.get(room_id, 0) + 1

    def live(self, room_id: str) -> int:
        """Distinct users present now (0 for a room not counted)."""
        room = self._rooms.get(room_id)
        return room.count.live if room and room.count else 0

    def figures(self, room_id: str) -> Figures | None:
        room = self._rooms.get(room_id)
        if room is None or room.count is None:
            return None
        return room.count.figures(self._clock.now_ms())

    # --- the sampler ----------------------------------------------------------------------------

    async def tick(self) -> None:
        """One interval: sample every live room, tell records passed, write it all at once."""
        now = self._clock.now_ms()
        for room_id, room in list(self._rooms.items()):
            if room.count is None:
                if room.loading is None:  # the last load failed: try again
                    room.loading = asyncio.create_task(self._load(room))
                continue
            if not self.runs(room_id):
                continue
            self._add_sample(Sample(room_id, now, room.count.live, room.interval_peak))
            room.interval_peak = room.count.live
            self._tell(room_id, room.watch.check(room.count.figures(now)))
        await self.flush()

    async def flush(self) -> None:
        """Write what is pending, one transaction; on failure it stays pending."""
        async with self._flush_lock:
            now = self._clock.now_ms()
            changed: list[tuple[_Room, RoomRecord]] = []
            for room_id, room in self._rooms.items():
                if room.count is None or not self.runs(room_id):
                    continue
                figures = room.count.figures(now)
                markets = {
                    m: f
                    for m, f in room.count.market_figures(now).items()
                    if room.written_markets.get(m) != f
                }
                if figures != room.written or markets:
                    changed.append((room, RoomRecord(room.info, figures, markets, now)))
            samples, seen, final = self._samples, self._seen, self._final
            plays = self._replay_plays
            batch = Batch(
                samples=tuple(samples),
                records=(*(r for _, r in changed), *final.values()),
                seen=tuple(seen),
                replay_plays=tuple(plays.items()),
            )
            if not batch:
                return
            self._samples, self._seen, self._final, self._replay_plays = [], [], {}, {}
            try:
                await self._store.write(batch)
            except Exception:
                self._samples = samples + self._samples
                self._seen = seen + self._seen
                self._final = {**final, **self._final}
                for room_id, n in plays.items():
                    self._replay_plays[room_id] = self._replay_plays.get(room_id, 0) + n
                raise
            for room, record in changed:
                room.written = record.figures
                room.written_markets.update(record.markets)

    # --- inside -----------------------------------------------------------------------------------

    async def _load(self, room: _Room) -> None:
        room_id = room.info.room_id
        try:
            resumed = await self._store.resume(room_id)
            bars = await self._store.bars(room.info.host_id, room_id)
        except Exception:
            logger.exception("stats: loading room %s failed; retried next interval", room_id)
            room.loading = None
            return
        if self._rooms.get(room_id) is not room:
            return
        now = self._clock.now_ms()
        if resumed is not None:
            stored = resumed.record
            if stored.ended_at is not None:
                logger.warning("stats: room %s had ended; counting on from its record", room_id)
            count = RoomCount.restored(
                room_id,
                stored.info.started_at,
                stored.figures,
                stored.markets,
                resumed.seen,
                grace_ms=self._grace_ms,
            )
            room.info = replace(room.info, started_at=stored.info.started_at)
            room.written_markets = dict(stored.markets)
            logger.info(
                "stats: room %s resumed with %d unique listeners", room_id, stored.figures.unique
            )
        else:
            count = RoomCount(room_id, room.info.started_at, self._grace_ms)
        room.watch = RecordWatch(bars)
        if resumed is not None:
            room.watch.check(resumed.record.figures)  # records passed before a restart: told then
        for event in room.backlog:
            if event.kind == "join":
                arrival = count.join(
                    event.user_id, guest=event.guest, market=event.market, now_ms=event.now_ms
                )
                self._after_join(room, count, event.user_id, arrival)
                # Told with the count that passed the record, not the backlog's last.
                self._tell(room_id, room.watch.check(count.figures(event.now_ms), _ON_JOIN))
            else:
                count.leave(event.user_id, event.now_ms)
        room.backlog.clear()
        room.count, room.loading = count, None
        room.interval_peak = max(room.interval_peak, count.live)
        self._tell(room_id, room.watch.check(count.figures(now), _ON_JOIN))

    def _after_join(self, room: _Room, count: RoomCount, user_id: str, arrival: Arrival) -> None:
        room.interval_peak = max(room.interval_peak, count.live)
        if arrival is not Arrival.NEW:
            return
        seen = count.seen(user_id)
        if seen is None:
            return
        if len(self._seen) >= self.config.max_pending_seen:
            logger.warning(
                "stats behind: not remembering user %s in room %s", user_id, room.info.room_id
            )
            return
        self._seen.append((room.info.room_id, seen))

    def _add_sample(self, sample: Sample) -> None:
        self._samples.append(sample)
        excess = len(self._samples) - self.config.max_pending_samples
        if excess > 0:
            del self._samples[:excess]
            logger.warning("stats behind: dropped the %d oldest listener samples", excess)

    def _tell(self, room_id: str, broken: list[RecordBroken]) -> None:
        listener = self._on_record
        if listener is None:
            return
        for record in broken:
            logger.info(
                "room %s passed the %s %s record: %d (was %d)",
                room_id,
                record.scope,
                record.metric,
                record.value,
                record.previous,
            )
            self._tasks.spawn(listener(room_id, record))
