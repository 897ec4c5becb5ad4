"""A room's playlist and its playback, pure.

The playback is server-authoritative: ``{item_id, position_s, playing, rate, at}`` says where the
item is at server time ``at`` (ms); anyone computes the position at any other time from it.
Starts and unpauses are scheduled a little ahead (``start_at``, chosen by the service from the
members' round trips) so every player starts together: before ``at`` a playing item is still at
``position_s``.

:func:`decide` returns the next :class:`Playlist` or raises (nothing changes). Who may control
is the permission table's business (``playlist_controllers``); what is left here is the rules of
the queue: suggestions wait for staff in ``host`` mode, at most ``max_items`` items, one
skip vote per user per item.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from liveroom.errors import Conflict, Forbidden, Full, Invalid, NotFound
from liveroom.rooms.stage import UserInfo


@dataclass(frozen=True, slots=True)
class PlaylistLimits:
    max_items: int = 500
    skip_share: float = 0.5
    """Vote-skip needs max(1, ⌈share × members present⌉) votes."""


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    title: str
    added_by: UserInfo
    url: str | None = None
    media_id: str | None = None
    duration_s: float | None = None
    approved: bool = True
    """``False``: a suggestion waiting for staff (``host`` mode)."""


@dataclass(frozen=True, slots=True)
class Playback:
    item_id: str | None = None
    position_s: float = 0.0
    playing: bool = False
    rate: float = 1.0
    at: int = 0

    def position_at(self, now_ms: int, duration_s: float | None = None) -> float:
        """Where the item is at ``now_ms`` (held before a scheduled start; at most its end)."""
        position = self.position_s
        if self.playing and now_ms > self.at:
            position += (now_ms - self.at) / 1000 * self.rate
        return min(position, duration_s) if duration_s is not None else position


@dataclass(frozen=True, slots=True)
class Playlist:
    room_id: str
    items: tuple[Item, ...] = ()
    playback: Playback = field(default_factory=Playback)
    repeat: bool = False
    skip_votes: frozenset[str] = frozenset()

    @property
    def queue(self) -> tuple[Item, ...]:
        """The approved items, in play order."""
        return tuple(i for i in self.items if i.approved)

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise NotFound("no such playlist item")

    @property
    def current(self) -> Item | None:
        item_id = self.playback.item_id
        return next((i for i in self.items if i.id == item_id), None)


# --- commands ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    name: str
    verified: bool
    controls: bool
    """May control playback and the queue (staff; everyone on stage in ``open`` mode)."""


@dataclass(frozen=True, slots=True)
class Add:
    item_id: str  # chosen by the service
    title: str
    url: str | None = None
    media_id: str | None = None
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class Approve:
    item_id: str


@dataclass(frozen=True, slots=True)
class Remove:
    item_id: str
    start_at: int = 0
    """When the next item starts, if the current one goes while playing."""


@dataclass(frozen=True, slots=True)
class Move:
    item_id: str
    position: int


@dataclass(frozen=True, slots=True)
class Play:
    start_at: int
    item_id: str | None = None


@dataclass(frozen=True, slots=True)
class Pause:
    pass


@dataclass(frozen=True, slots=True)
class Seek:
    position_s: float
    start_at: int


@dataclass(frozen=True, slots=True)
class Next:
    start_at: int


@dataclass(frozen=True, slots=True)
class Previous:
    start_at: int


@dataclass(frozen=True, slots=True)
class SetRepeat:
    on: bool


@dataclass(frozen=True, slots=True)
class VoteSkip:
    present: int
    """Members in the room now (the threshold's base)."""
    start_at: int
    item_id: str | None = None
    """The item the voter wants skipped: a vote that arrives after it ended counts for nothing."""


@dataclass(frozen=True, slots=True)
class Expire:
    """The server's timer: an item of known duration that reached its end moves on."""

    start_at: int


Command = (
    Add | Approve | Remove | Move | Play | Pause | Seek | Next | Previous | SetRepeat | VoteSkip
)


def skip_need(present: int, limits: PlaylistLimits) -> int:
    return max(1, math.ceil(limits.skip_share * present))


def decide(
    playlist: Playlist, command: Command, actor: Actor, now_ms: int, limits: PlaylistLimits
) -> Playlist:
    """The playlist after ``command`` by ``actor``, or raise why not (nothing changes)."""
    if not actor.controls and not isinstance(command, Add | VoteSkip):
        raise Forbidden("only the playlist's controllers can do that")
    match command:
        case Add():
            return _add(playlist, command, actor, limits)
        case Approve(item_id=item_id):
            item = playlist.item(item_id)
            return _replace_item(playlist, replace(item, approved=True))
        case Remove(item_id=item_id, start_at=start_at):
            return _remove(playlist, playlist.item(item_id), max(start_at, now_ms))
        case Move(item_id=item_id, position=position):
            return _move(playlist, playlist.item(item_id), position)
        case Play(start_at=start_at, item_id=item_id):
            return _play(playlist, item_id, start_at, now_ms)
        case Pause():
            return _pause(playlist, now_ms)
        case Seek(position_s=position_s, start_at=start_at):
            return _seek(playlist, position_s, start_at, now_ms)
        case Next(start_at=start_at):
            return _step(playlist, +1, start_at, now_ms, wrap=playlist.repeat)
        case Previous(start_at=start_at):
            return _step(playlist, -1, start_at, now_ms, wrap=playlist.repeat)
        case SetRepeat(on=on):
            return replace(playlist, repeat=on)
        case VoteSkip():
            return _vote_skip(playlist, command, actor, now_ms, limits)
    raise Invalid(f"unknown playlist command {command!r}")


def _add(playlist: Playlist, add: Add, actor: Actor, limits: PlaylistLimits) -> Playlist:
    if (add.url is None) == (add.media_id is None):
        raise Invalid("give either a url or a media_id")
    title = " ".join(add.title.split())
    if not 1 <= len(title) <= 200:
        raise Invalid("title: 1 to 200 characters")
    if add.duration_s is not None and not 0 < add.duration_s <= 24 * 3600:
        raise Invalid("duration_s: more than 0 and at most a day")
    if len(playlist.items) >= limits.max_items:
        raise Full(f"the playlist holds at most {limits.max_items} items")
    if any(i.id == add.item_id for i in playlist.items):
        raise Conflict("that item is already in the playlist")
    item = Item(
        add.item_id,
        title,
        UserInfo(actor.id, actor.name, actor.verified),
        url=add.url,
        media_id=add.media_id,
        duration_s=add.duration_s,
        approved=actor.controls,
    )
    added = replace(playlist, items=(*playlist.items, item))
    if added.playback.item_id is None and item.approved:
        added = replace(added, playback=Playback(item.id, 0.0, False, 1.0, 0))  # cued, paused
    return added


def _replace_item(playlist: Playlist, item: Item) -> Playlist:
    items = tuple(item if i.id == item.id else i for i in playlist.items)
    result = replace(playlist, items=items)
    if result.playback.item_id is None and item.approved:
        result = replace(result, playback=Playback(item.id))
    return result


def _remove(playlist: Playlist, item: Item, start_at: int) -> Playlist:
    items = tuple(i for i in playlist.items if i.id != item.id)
    if item.id != playlist.playback.item_id:
        return replace(playlist, items=items)
    # The current item goes: the one after it plays on (at ``start_at``) if the room was
    # playing; at the end of the queue the first item is cued, paused; an empty queue stops.
    queue = playlist.queue
    index = [i.id for i in queue].index(item.id)
    after = queue[index + 1 :] or (queue[:index] if playlist.repeat else ())
    playing = playlist.playback.playing and bool(after)
    following = after or queue[:index]
    if not following:
        return replace(
            playlist, items=items, playback=Playback(at=start_at), skip_votes=frozenset()
        )
    playback = Playback(following[0].id, 0.0, playing, 1.0, start_at)
    return replace(playlist, items=items, playback=playback, skip_votes=frozenset())


def _move(playlist: Playlist, item: Item, position: int) -> Playlist:
    """``position`` is a place in the queue (approved items); suggestions stay where they are."""
    if not item.approved:
        raise Conflict("approve a suggestion before moving it")
    rest = [i for i in playlist.items if i.id != item.id]
    queue = [i for i in rest if i.approved]
    if not 0 <= position <= len(queue):
        raise Invalid(f"position: 0 to {len(queue)}")
    index = rest.index(queue[position]) if position < len(queue) else len(rest)
    rest.insert(index, item)
    return replace(playlist, items=tuple(rest))


def _current_or_refuse(playlist: Playlist) -> Item:
    current = playlist.current
    if current is None:
        raise Conflict("nothing is cued: add an item first")
    return current


def _play(playlist: Playlist, item_id: str | None, start_at: int, now_ms: int) -> Playlist:
    if item_id is not None:
        item = playlist.item(item_id)
        if not item.approved:
            raise Conflict("a suggestion plays once it is approved")
        playback = Playback(item.id, 0.0, True, 1.0, start_at)
        return replace(playlist, playback=playback, skip_votes=frozenset())
    current = _current_or_refuse(playlist)
    if playlist.playback.playing:
        return playlist
    position = playlist.playback.position_at(now_ms, current.duration_s)
    if current.duration_s is not None and position >= current.duration_s:
        position = 0.0  # at its end: play starts it again
    return replace(playlist, playback=Playback(current.id, position, True, 1.0, start_at))


def _pause(playlist: Playlist, now_ms: int) -> Playlist:
    current = _current_or_refuse(playlist)
    if not playlist.playback.playing:
        return playlist
    position = playlist.playback.position_at(now_ms, current.duration_s)
    return replace(playlist, playback=Playback(current.id, position, False, 1.0, now_ms))


def _seek(playlist: Playlist, position_s: float, start_at: int, now_ms: int) -> Playlist:
    current = _current_or_refuse(playlist)
    if position_s < 0 or (current.duration_s is not None and position_s > current.duration_s):
        raise Invalid("position_s: within the item")
    playing = playlist.playback.playing
    at = start_at if playing else now_ms
    return replace(playlist, playback=Playback(current.id, position_s, playing, 1.0, at))


def _step(playlist: Playlist, step: int, start_at: int, now_ms: int, *, wrap: bool) -> Playlist:
    queue = playlist.queue
    if not queue:
        raise Conflict("the playlist is empty")
    ids = [i.id for i in queue]
    current = playlist.playback.item_id
    index = ids.index(current) if current in ids else -1
    target = index + step
    if not 0 <= target < len(ids):
        if not wrap:
            # Past the end: stop, cued at the end of the last item (nothing more to play).
            if step > 0 and index >= 0:
                last = queue[index]
                end = last.duration_s or playlist.playback.position_at(now_ms)
                stopped = Playback(last.id, end, False, 1.0, now_ms)
                return replace(playlist, playback=stopped, skip_votes=frozenset())
            target = 0
        else:
            target %= len(ids)
    playing = playlist.playback.playing
    at = start_at if playing else now_ms
    playback = Playback(ids[target], 0.0, playing, 1.0, at)
    return replace(playlist, playback=playback, skip_votes=frozenset())


def _vote_skip(
    playlist: Playlist, vote: VoteSkip, actor: Actor, now_ms: int, limits: PlaylistLimits
) -> Playlist:
    current = _current_or_refuse(playlist)
    if vote.item_id is not None and vote.item_id != current.id:
        raise Conflict("that item is no longer playing")
    if actor.id in playlist.skip_votes:
        return playlist  # one vote per user per item; a retry changes nothing
    votes = playlist.skip_votes | {actor.id}
    if len(votes) >= skip_need(vote.present, limits):
        return _step(playlist, +1, vote.start_at, now_ms, wrap=playlist.repeat)
    return replace(playlist, skip_votes=votes)


def ends_at(playlist: Playlist) -> int | None:
    """Server time (ms) when the playing item reaches its end, if its duration is known."""
    playback, current = playlist.playback, playlist.current
    if not playback.playing or current is None or current.duration_s is None:
        return None
    left_s = max(0.0, current.duration_s - playback.position_s)
    return playback.at + math.ceil(left_s * 1000 / playback.rate)


def expire(playlist: Playlist, now_ms: int, start_at: int) -> Playlist:
    """Auto-advance: an item that reached its end moves to the next (or stops, or repeats)."""
    deadline = ends_at(playlist)
    if deadline is None or now_ms < deadline:
        return playlist
    return _step(playlist, +1, start_at, now_ms, wrap=playlist.repeat)


def wait_for_players(old: Playlist, new: Playlist, deadline: int) -> Playlist:
    """A new item that starts playing waits for its players to load it: its start is put off
    until ``deadline`` (the ready timeout), to be pulled in by :func:`start_sooner`."""
    if new.playback.item_id == old.playback.item_id:
        return new
    return start_later(new, deadline)


def start_sooner(playlist: Playlist, start_at: int) -> Playlist:
    p = playlist.playback
    if not p.playing or p.at <= start_at:
        return playlist
    return replace(playlist, playback=replace(p, at=start_at))


def start_later(playlist: Playlist, deadline: int) -> Playlist:
    """A start that must not come before ``deadline`` (a wait for players still running)."""
    p = playlist.playback
    if not p.playing or p.at >= deadline:
        return playlist
    return replace(playlist, playback=replace(p, at=deadline))


@dataclass(frozen=True, slots=True)
class RoomMusic:
    """What DJ mode plays into the room's audio: an uploaded file, from ``position_s`` at
    ``at``."""

    item_id: str
    media_id: str
    position_s: float
    at: int


def room_music(playlist: Playlist) -> RoomMusic | None:
    """The current item while it plays, when it is a file on this server (a link plays only in
    the members' own players)."""
    item, playback = playlist.current, playlist.playback
    if item is None or item.media_id is None or not playback.playing:
        return None
    return RoomMusic(item.id, item.media_id, playback.position_s, playback.at)
