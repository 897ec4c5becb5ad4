"""``GET /metrics`` on a running server: the series an operator graphs, with sane values,
bounded labels, and served only to whom it should be."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from liveroom.app import METRICS, RunningServer, StartupError, create_app, start_server
from liveroom.client import LiveroomClient
from liveroom.config import Config
from liveroom.metrics import TOP_ROOMS, is_private_address
from tests.conftest import Connect, make_token
from tests.peers import Peers

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str, headers: Mapping[str, str] | None = None) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics", headers=headers) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("text/plain")
        text = await r.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def labelled(samples: Samples, name: str, label: str) -> dict[str, float]:
    """``{label value: sample value}`` of every series of ``name``."""
    return {dict(key)[label]: v for (n, key), v in samples.items() if n == name}


async def until(check: Callable[[Samples], bool], url: str, timeout: float = 10.0) -> Samples:
    """Scrape until ``check(samples)`` holds (the mixer and SQL run on their own time)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = await scrape(url)
        if check(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.05)


async def test_a_live_room_its_listeners_and_events_are_counted(
    server: RunningServer, connect: Connect
) -> None:
    host = await connect("host", host=True)
    room_id = (await host.request("room:create", {"title": "Metrics"}))["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    fan = await connect("fan")
    await fan.request("room:join", {"room_id": room_id})
    refused = await fan.call("no:such:event", {"room_id": room_id})
    assert refused["error"]["code"] == "invalid"
    async with aiohttp.ClientSession() as http:
        for name in ("live.m3u8", "nothing.txt"):
            async with http.get(f"{server.url}/hls/{room_id}/{name}"):
                pass

    samples = await until(lambda s: value(s, "liveroom_mixer_tick_seconds_count") > 0, server.url)
    assert value(samples, "liveroom_rooms_live") == 1
    assert value(samples, "liveroom_media_rooms") == 1
    assert value(samples, "liveroom_listeners") == 2
    assert labelled(samples, "liveroom_room_listeners", "room_id") == {room_id: 2}
    assert value(samples, "liveroom_socketio_connections") == 2
    assert value(samples, "liveroom_webrtc_peer_connections") == 0

    received = labelled(samples, "liveroom_socketio_events_received_total", "event")
    assert received["room:create"] == 1
    assert received["room:join"] == 2
    assert received["other"] == 1  # an unknown name is never a label of its own
    assert "no:such:event" not in received
    assert labelled(samples, "liveroom_socketio_event_errors_total", "code") == {"invalid": 1}
    sent = labelled(samples, "liveroom_socketio_events_sent_total", "event")
    assert sent["room:state"] >= 2  # each joiner's own view, at least
    assert value(samples, "liveroom_socketio_packets_sent_total") >= sum(sent.values())

    assert value(samples, "liveroom_mixer_tick_seconds_bucket", le="+Inf") == value(
        samples, "liveroom_mixer_tick_seconds_count"
    )
    assert 0 < value(samples, "liveroom_mixer_tick_seconds_sum") < 60
    assert value(samples, "liveroom_mixer_late_ticks_total") >= 0
    assert value(samples, "liveroom_db_transaction_seconds_count", outcome="commit") >= 1
    hls = {
        (dict(k)["kind"], dict(k)["outcome"]): v
        for (n, k), v in samples.items()
        if n == "liveroom_hls_requests_total"
    }
    assert sum(v for (kind, _), v in hls.items() if kind == "live") == 1
    assert hls[("other", "not_found")] == 1
    assert value(samples, "liveroom_redis_command_seconds_count") == 0  # one node: no Redis

    await fan.request("room:leave", {"room_id": room_id})
    later = await scrape(server.url)
    assert value(later, "liveroom_listeners") == 1
    assert labelled(later, "liveroom_room_listeners", "room_id") == {room_id: 1}


async def test_only_the_most_listened_rooms_get_a_label(
    server: RunningServer, connect: Connect
) -> None:
    server.app[METRICS].top_rooms = 2  # the default (20) bounds the same way, at 20
    host = await connect("host", host=True)
    rooms = [
        (await host.request("room:create", {"title": f"Room {n}"}))["room"]["id"] for n in range(4)
    ]
    # Room n has n listeners: the two busiest are labelled, the rest only counted.
    for n, room_id in enumerate(rooms):
        for i in range(n):
            fan = await connect(f"fan-{n}-{i}")
            await fan.request("room:join", {"room_id": room_id})

    samples = await scrape(server.url)
    assert value(samples, "liveroom_rooms_live") == 4
    assert value(samples, "liveroom_listeners") == 0 + 1 + 2 + 3
    assert labelled(samples, "liveroom_room_listeners", "room_id") == {rooms[3]: 3, rooms[2]: 2}


def test_the_default_label_bound_holds_for_thousands_of_rooms() -> None:
    from liveroom.metrics import _rooms  # noqa: PLC0415  (the collector's own piece)

    listeners = {f"room-{n:04}": n % 97 for n in range(5000)}
    families = {f.name: f for f in _rooms(listeners, TOP_ROOMS)}
    top = families["liveroom_room_listeners"].samples
    assert len(top) == TOP_ROOMS
    assert min(s.value for s in top) == 96  # none left out is busier than one labelled
    assert families["liveroom_listeners"].samples[0].value == sum(listeners.values())
    assert families["liveroom_rooms_live"].samples[0].value == 5000


async def test_rtp_packets_are_counted_and_never_go_back(audio_server: RunningServer) -> None:
    async with Peers(audio_server) as peers:
        host = await peers.client("host", host=True)
        room_id = (await host.request("room:create", {"title": "RTP"}))["room"]["id"]
        await host.request("room:join", {"room_id": room_id})
        listener = await peers.client("listener")
        await listener.request("room:join", {"room_id": room_id})
        session = await peers.audio(listener, room_id, None)

        def sending(s: Samples) -> bool:
            return value(s, "liveroom_rtp_packets_sent_total") >= 25  # half a second of audio

        samples = await until(sending, audio_server.url, timeout=20)
        assert value(samples, "liveroom_webrtc_peer_connections") == 1
        assert sending(samples)
        before = value(samples, "liveroom_rtp_packets_sent_total")
        assert value(samples, "liveroom_rtp_packets_lost_total", direction="outbound") <= before
        # The listener's packets came from the room's fan-out loop, which timed itself.
        assert value(samples, "liveroom_listener_fanout_packets_total") >= 25
        assert value(samples, "liveroom_listener_fanout_seconds_total") > 0

        await session.close()
        peers.sessions.remove(session)
        await listener.request("room:leave", {"room_id": room_id})  # the server closes the peer
        closed = await until(
            lambda s: value(s, "liveroom_webrtc_peer_connections") == 0, audio_server.url
        )
        assert value(closed, "liveroom_webrtc_peer_connections") == 0
        # The closed connection's packets stay counted: a counter never goes back.
        assert value(closed, "liveroom_rtp_packets_sent_total") >= before


async def test_a_token_is_needed_from_everyone_when_one_is_set(config: Config) -> None:
    token = "metrics-" + "t" * 24
    running = await start_server(replace(config, metrics_token=token))
    try:
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
                async with http.get(f"{running.url}/metrics", headers=headers) as r:
                    assert r.status == 401
        samples = await scrape(running.url, {"Authorization": f"Bearer {token}"})
        assert value(samples, "liveroom_rooms_live") == 0
    finally:
        await running.stop()


async def test_without_a_token_nothing_that_came_through_a_proxy_is_served(
    server: RunningServer,
) -> None:
    async with aiohttp.ClientSession() as http:
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            # A reverse proxy on this machine connects from loopback, for anyone in the world.
            async with http.get(f"{server.url}/metrics", headers={header: "203.0.113.9"}) as r:
                assert r.status == 403
                assert "--metrics-token" in (await r.json())["error"]["message"]


@pytest.mark.parametrize(
    ("address", "private"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.20", True),
        ("fd00::1", True),
        ("fe80::1%eth0", True),
        ("::ffff:10.0.0.1", True),
        ("8.8.8.8", False),
        ("2001:4860::8888", False),
        ("::ffff:8.8.8.8", False),
        ("100.64.0.1", False),  # carrier-grade NAT: shared with strangers
        ("", False),
        ("not an address", False),
    ],
)
def test_private_networks_are_told_from_the_internet(address: str, private: bool) -> None:
    assert is_private_address(address) is private


async def test_no_metrics_means_no_endpoint(config: Config) -> None:
    running = await start_server(replace(config, metrics=False))
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{running.url}/metrics") as r:
            assert r.status == 404
    finally:
        await running.stop()


def test_a_short_metrics_token_is_refused(config: Config) -> None:
    with pytest.raises(StartupError, match="metrics-token"):
        create_app(replace(config, metrics_token="short"))


async def test_two_servers_in_one_process_keep_their_own_series(
    config: Config, tmp_path: Path
) -> None:
    first = await start_server(config)
    second = await start_server(replace(config, data_dir=tmp_path / "second"))
    try:
        async with await LiveroomClient.connect(first.url, make_token("h", host=True)) as host:
            await host.request("room:create", {"title": "Only on the first"})
            a, b = await scrape(first.url), await scrape(second.url)
        assert value(a, "liveroom_rooms_live") == 1
        assert value(a, "liveroom_socketio_connections") == 1
        assert value(b, "liveroom_rooms_live") == 0
        assert value(b, "liveroom_socketio_connections") == 0
        assert "room:create" not in labelled(b, "liveroom_socketio_events_received_total", "event")
    finally:
        await first.stop()
        await second.stop()
