"""The playlist alone, with a fake clock: positions, pause, seek, auto-advance, vote-skip,
suggestions and who controls."""

from __future__ import annotations

import pytest

from liveroom.errors import Conflict, Forbidden, Full, Invalid, LiveroomError, NotFound
from liveroom.permissions import Role, playlist_controllers
from liveroom.playlist import model
from liveroom.playlist.model import (
    Actor,
    Add,
    Next,
    Pause,
    Play,
    Playlist,
    PlaylistLimits,
    Seek,
    VoteSkip,
    ends_at,
    expire,
    skip_need,
)

LIMITS = PlaylistLimits()
HOST = Actor("host", "Host", True, controls=True)
FAN = Actor("fan", "Fan", False, controls=False)
LEAD = 500  # the service schedules starts this far ahead (at least)


def run(p: Playlist, command: model.Command, actor: Actor = HOST, now: int = 0) -> Playlist:
    return model.decide(p, command, actor, now, LIMITS)


def with_songs(*durations: float | None) -> Playlist:
    p = Playlist("r")
    for n, duration in enumerate(durations):
        p = run(
            p, Add(f"s{n}", f"Song {n}", url=f"https://example.test/{n}.mp3", duration_s=duration)
        )
    return p


def test_the_first_item_is_cued_paused_and_position_follows_the_clock() -> None:
    p = with_songs(180.0, 200.0)
    assert p.playback.item_id == "s0" and not p.playback.playing
    p = run(p, Play(start_at=1_000 + LEAD), now=1_000)
    assert p.playback.position_at(1_200) == 0.0  # before the scheduled start: held
    assert p.playback.position_at(1_500 + 10_000) == pytest.approx(10.0)
    p = run(p, Pause(), now=11_500)
    assert p.playback.position_s == pytest.approx(10.0) and not p.playback.playing
    assert p.playback.position_at(99_000) == pytest.approx(10.0)  # paused: stays
    p = run(p, Play(start_at=20_500), now=20_000)
    assert p.playback.position_at(25_500) == pytest.approx(15.0)


def test_seek_keeps_playing_or_paused_and_stays_within_the_item() -> None:
    p = run(with_songs(180.0), Play(start_at=0))
    p = run(p, Seek(90.0, start_at=5_500), now=5_000)
    assert p.playback.playing and p.playback.position_at(6_500) == pytest.approx(91.0)
    for bad in (-1.0, 181.0):
        with pytest.raises(Invalid):
            run(p, Seek(bad, start_at=0))
    paused = run(run(p, Pause(), now=7_000), Seek(30.0, start_at=9_999), now=8_000)
    assert not paused.playback.playing and paused.playback.position_at(60_000) == 30.0


def test_auto_advance_at_the_end_of_a_known_duration() -> None:
    p = run(with_songs(10.0, 20.0, None), Play(start_at=1_000))
    assert ends_at(p) == 11_000
    assert expire(p, 10_999, 11_500) == p
    p = expire(p, 11_000, 11_500)
    assert p.playback.item_id == "s1" and p.playback.playing and p.playback.at == 11_500
    p = expire(p, 31_500, 32_000)
    assert p.playback.item_id == "s2" and ends_at(p) is None  # unknown length: no timer
    assert p.playback.position_at(10**9, 10.0) == 10.0  # never past a known end


def test_the_end_of_the_queue_stops_or_repeats() -> None:
    p = run(with_songs(10.0, 10.0), Play(item_id="s1", start_at=0))
    stopped = expire(p, 10_000, 10_500)
    assert stopped.playback.item_id == "s1" and not stopped.playback.playing
    looping = run(p, model.SetRepeat(True))
    assert expire(looping, 10_000, 10_500).playback.item_id == "s0"


def test_vote_skip_needs_half_the_room_one_vote_each() -> None:
    assert [skip_need(n, LIMITS) for n in (0, 1, 2, 3, 10, 11)] == [1, 1, 1, 2, 5, 6]
    p = run(with_songs(100.0, 100.0), Play(start_at=0))
    voters = [Actor(f"v{i}", f"V{i}", False, controls=False) for i in range(3)]
    p = run(p, VoteSkip(present=5, start_at=0), voters[0])
    p = run(p, VoteSkip(present=5, start_at=0), voters[0])  # again: still one
    assert p.skip_votes == {"v0"} and p.playback.item_id == "s0"
    p = run(p, VoteSkip(present=5, start_at=0), voters[1])
    assert p.skip_votes == {"v0", "v1"}
    p = run(p, VoteSkip(present=5, start_at=2_000), voters[2], now=1_500)
    assert p.playback.item_id == "s1" and p.skip_votes == frozenset()
    assert p.playback.at == 2_000


def test_fans_suggest_staff_approve_and_only_controllers_control() -> None:
    p = with_songs(100.0)
    p = run(p, Add("fan1", "Fan pick", url="https://example.test/f.mp3"), FAN)
    assert not p.item("fan1").approved and [i.id for i in p.queue] == ["s0"]
    for command in (Play(start_at=0), Pause(), Next(start_at=0), model.Approve("fan1")):
        with pytest.raises(Forbidden):
            run(p, command, FAN)
    with pytest.raises(Conflict, match="approved"):
        run(p, Play(item_id="fan1", start_at=0))
    p = run(p, model.Approve("fan1"))
    assert [i.id for i in p.queue] == ["s0", "fan1"]
    # Who controls: staff in `host` mode; everyone on stage too in `open` mode.
    assert playlist_controllers(False) == {Role.HOST, Role.COHOST, Role.MODERATOR}
    assert Role.SPEAKER in playlist_controllers(True)
    assert Role.LISTENER not in playlist_controllers(True)


def test_queue_edits_and_their_refusals() -> None:
    p = with_songs(10.0, 10.0, 10.0)
    p = run(p, model.Move("s2", 0))
    assert [i.id for i in p.items] == ["s2", "s0", "s1"]
    with pytest.raises(Invalid):
        run(p, model.Move("s2", 3))
    playing = run(p, Play(item_id="s0", start_at=0))
    after = run(playing, model.Remove("s0", start_at=3_500), now=3_000)
    assert after.playback.item_id == "s1" and after.playback.playing
    assert after.playback.at == 3_500  # the next one starts with the usual lead
    # The last one goes while playing: the first is cued, paused (the queue ended).
    last = run(run(p, Play(item_id="s1", start_at=0)), model.Remove("s1"))
    assert last.playback.item_id == "s2" and not last.playback.playing
    only = run(run(with_songs(10.0), Play(start_at=0)), model.Remove("s0"))
    assert only.playback.item_id is None
    # Moves count places in the queue; suggestions stay put and cannot be moved.
    fan = Actor("fan", "Fan", False, controls=False)
    q = run(with_songs(10.0, 10.0), Add("sug", "Suggested", url="https://a"), fan)
    q = run(q, model.Move("s1", 0))
    assert [i.id for i in q.queue] == ["s1", "s0"]
    with pytest.raises(Conflict):
        run(q, model.Move("sug", 0))
    bad: list[tuple[model.Command, type[LiveroomError]]] = [
        (Add("x", "No source"), Invalid),
        (Add("y", "Both", url="https://a", media_id="m"), Invalid),
        (Add("z", "  ", url="https://a"), Invalid),
        (Add("s0", "Again", url="https://a"), Conflict),
        (model.Remove("nope"), NotFound),
    ]
    for command, error in bad:
        with pytest.raises(error):
            run(p, command)
    assert len(model.decide(p, Add("n", "One", url="https://a"), HOST, 0, LIMITS).items) == 4
    with pytest.raises(Full):
        model.decide(p, Add("n", "One more", url="https://a"), HOST, 0, PlaylistLimits(max_items=3))


def test_a_new_item_waits_for_players_and_starts_sooner_when_they_are_ready() -> None:
    p = run(with_songs(100.0, 100.0), Play(start_at=500))
    moved = run(p, Next(start_at=10_500), now=10_000)
    held = model.wait_for_players(p, moved, deadline=15_000)
    assert held.playback.at == 15_000 and held.playback.position_at(14_999) == 0.0
    assert model.wait_for_players(p, p, 15_000) == p  # same item (an unpause): no wait
    assert model.start_sooner(held, 11_000).playback.at == 11_000
    assert model.start_sooner(held, 16_000) == held  # never later than it was
