"""The counting model alone: a scripted timeline with a fake clock gives exact figures."""

from __future__ import annotations

import pytest

from liveroom.stats.model import (
    Arrival,
    Figures,
    Metric,
    RecordBars,
    RecordBroken,
    RecordWatch,
    RoomCount,
    Scope,
    Seen,
    market_key,
    shown,
)

T0 = 1_795_000_000_000
S = 1000


def at(seconds: float) -> int:
    return T0 + round(seconds * S)


def timeline() -> tuple[RoomCount, list[Arrival]]:
    """Ana (KR) and Cy (JP) signed in, Bo and Dee guests; Bo reconnects within the grace
    period, Ana comes back after it, Ana also opens a second socket."""
    room = RoomCount("r1", started_at=at(0), grace_ms=10 * S)
    arrivals = [
        room.join("ana", guest=False, market="kr", now_ms=at(0)),
        room.join("g_bo", guest=True, market=None, now_ms=at(10)),
        room.join("cy", guest=False, market="JP", now_ms=at(20)),
        room.join("ana", guest=False, market="KR", now_ms=at(20)),  # a second socket
    ]
    room.leave("g_bo", at(30))
    arrivals.append(room.join("g_bo", guest=True, market="US", now_ms=at(35)))
    room.leave("ana", at(60))
    arrivals.append(room.join("ana", guest=False, market="KR", now_ms=at(90)))
    arrivals.append(room.join("g_dee", guest=True, market="KR", now_ms=at(90)))
    return room, arrivals


def test_a_scripted_timeline_gives_exact_peak_unique_and_minutes() -> None:
    room, arrivals = timeline()
    assert arrivals == [
        Arrival.NEW,
        Arrival.NEW,
        Arrival.NEW,
        Arrival.ALREADY,
        Arrival.RECONNECT,
        Arrival.RETURN,
        Arrival.NEW,
    ]
    assert room.live == 4
    final = room.end(at(120))

    # Live: 1, 2, 3 (at 20 s), 2, 3 again (not a new peak), 2, then 4 at 90 s.
    assert (final.peak, final.peak_at) == (4, at(90))
    assert final.peak_signed_in == 2
    assert (final.unique, final.unique_signed_in, final.unique_at) == (4, 2, at(90))
    # Ana 60 + 30 s, Bo 20 + 85 s (the 5 s gap is not listening), Cy 100 s, Dee 30 s.
    assert final.listen_ms == 325 * S
    assert final.listen_ms_signed_in == 190 * S
    assert shown(Metric.MINUTES, final.listen_ms) == 5
    assert final.minutes_at == at(120)
    assert final.presences == 5  # Bo's reconnect continued one presence
    assert room.live == 0


def test_markets_are_pinned_at_the_first_join_and_add_up() -> None:
    room, _ = timeline()
    markets = room.market_figures(at(120))
    assert set(markets) == {"KR", "JP", "unknown"}  # Bo stayed "unknown", not US
    assert sum(f.unique for f in markets.values()) == room.figures(at(120)).unique
    kr = markets["KR"]
    assert (kr.unique, kr.unique_signed_in, kr.peak, kr.peak_at) == (2, 1, 2, at(90))
    assert kr.listen_ms == (60 + 30 + 30) * S
    assert markets["unknown"].unique_signed_in == 0


def test_minutes_grow_while_present_and_reading_them_changes_nothing() -> None:
    room, _ = timeline()
    middle = RoomCount("r2", at(0))
    middle.join("a", guest=False, market=None, now_ms=at(0))
    middle.join("b", guest=False, market=None, now_ms=at(20))
    assert middle.figures(at(50)).listen_ms == (50 + 30) * S
    assert middle.figures(at(50)).minutes_at == at(50)
    middle.leave("a", at(60))
    middle.leave("b", at(70))
    assert middle.figures(at(500)) == middle.figures(at(900))  # nobody present: frozen
    assert middle.figures(at(900)).minutes_at == at(70)
    earlier = room.figures(at(95)).listen_ms
    assert room.figures(at(100)).listen_ms == earlier + 4 * 5 * S  # four present, 5 s more


@pytest.mark.parametrize(
    ("given", "counted"),
    [
        ("kr", "KR"),
        ("KR", "KR"),
        (None, "unknown"),
        ("", "unknown"),
        ("Korea", "unknown"),
        ("k1", "unknown"),
        ("ǅǅ", "unknown"),
    ],
)
def test_markets_are_codes_or_unknown(given: str | None, counted: str) -> None:
    assert market_key(given) == counted


def test_a_clock_stepping_back_never_makes_time_negative() -> None:
    room = RoomCount("r", at(100))
    room.join("a", guest=False, market=None, now_ms=at(100))
    room.leave("a", at(90))
    assert room.figures(at(80)).listen_ms == 0


def test_leaves_of_absent_users_and_joins_after_the_end_are_ignored() -> None:
    room = RoomCount("r", at(0))
    assert not room.leave("nobody", at(1))
    room.join("a", guest=False, market=None, now_ms=at(0))
    room.end(at(10))
    assert room.join("b", guest=False, market=None, now_ms=at(11)) is Arrival.ALREADY
    assert room.figures(at(20)).unique == 1


def test_a_restored_room_knows_who_it_has_seen() -> None:
    stored = Figures(
        peak=2,
        peak_signed_in=1,
        peak_at=at(5),
        unique=2,
        unique_signed_in=1,
        unique_at=at(5),
        listen_ms=40 * S,
        listen_ms_signed_in=20 * S,
        minutes_at=at(30),
        presences=2,
    )
    seen = [Seen("ana", False, "KR", at(0)), Seen("g_bo", True, "unknown", at(5))]
    room = RoomCount.restored("r", at(0), stored, {}, seen)
    assert room.join("ana", guest=False, market="JP", now_ms=at(60)) is Arrival.RETURN
    assert room.join("cy", guest=False, market=None, now_ms=at(60)) is Arrival.NEW
    after = room.end(at(70))
    assert (after.unique, after.unique_signed_in) == (3, 2)
    assert after.listen_ms == (40 + 10 + 10) * S
    assert after.peak == 2 and after.peak_at == at(5)  # 2 again is not a new peak
    assert room.market_figures(at(70))["KR"].unique == 0  # Ana's KR unique was counted before


# --- records -----------------------------------------------------------------------------------


def peak(n: int) -> Figures:
    return Figures(peak=n)


def test_records_fire_once_per_scope_host_first_then_all_time() -> None:
    watch = RecordWatch(RecordBars({Metric.PEAK: 10}, {Metric.PEAK: 5}))
    assert watch.check(peak(5)) == []  # equal is not passing
    assert watch.check(peak(6)) == [RecordBroken(Metric.PEAK, Scope.HOST, 6, 5)]
    assert watch.check(peak(8)) == []
    assert watch.check(peak(11)) == [RecordBroken(Metric.PEAK, Scope.ALL_TIME, 11, 10)]
    assert watch.check(peak(50)) == []


def test_passing_both_at_once_is_one_report_with_the_wider_scope() -> None:
    watch = RecordWatch(RecordBars({Metric.UNIQUE: 10}, {Metric.UNIQUE: 3}))
    assert watch.check(Figures(unique=20)) == [RecordBroken(Metric.UNIQUE, Scope.ALL_TIME, 20, 10)]
    assert watch.check(Figures(unique=30)) == []


def test_no_record_to_break_on_a_new_server_or_a_hosts_first_room() -> None:
    watch = RecordWatch(RecordBars())
    assert watch.check(Figures(peak=1000, unique=1000, listen_ms=10**9)) == []
    empty_rooms_only = RecordWatch(RecordBars({Metric.PEAK: 0}, {Metric.PEAK: 0}))
    assert empty_rooms_only.check(peak(1)) == []


def test_minutes_records_compare_exactly_and_show_whole_minutes() -> None:
    watch = RecordWatch(RecordBars({Metric.MINUTES: 120_000}))
    assert watch.check(Figures(listen_ms=120_000)) == []
    assert watch.check(Figures(listen_ms=120_001), [Metric.MINUTES]) == [
        RecordBroken(Metric.MINUTES, Scope.ALL_TIME, 2, 2)
    ]
