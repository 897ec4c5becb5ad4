"""ICE configuration: only configured servers; TURN credentials coturn will accept."""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac

import aioice.ice

from liveroom.config import add_arguments, load_config
from liveroom.media.ice import (
    announce_address,
    ice_servers_for,
    loopback_only_candidates,
    rtc_configuration,
    use_loopback_candidates,
)


def test_no_ice_server_unless_configured() -> None:
    # aiortc's own default would be a public STUN server; ours is empty.
    assert rtc_configuration([]).iceServers == []


def test_turn_credentials_follow_coturn_use_auth_secret() -> None:
    servers = ice_servers_for(
        ["stun:stun.example:3478", "turn:turn.example:3478"],
        "s3cret",
        "fan-1",
        now_s=1_000,
        ttl_s=600,
    )
    assert servers[0] == {"urls": "stun:stun.example:3478"}
    turn = servers[1]
    assert turn["username"] == "1600:fan-1"
    expected = hmac.new(b"s3cret", b"1600:fan-1", hashlib.sha1).digest()
    assert base64.b64decode(turn["credential"]) == expected


def test_turn_without_a_secret_gets_no_credentials() -> None:
    assert ice_servers_for(["turn:t:3478"], None, "u", 0, 60) == [{"urls": "turn:t:3478"}]


def test_ice_server_flag_repeats_and_env_is_comma_separated() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--ice-server", "stun:a:1", "--ice-server", "turn:b:2"])
    assert load_config(args, {}).ice_servers == ("stun:a:1", "turn:b:2")
    env = {"LIVEROOM_ICE_SERVERS": "stun:a:1, turn:b:2", "LIVEROOM_ICE_LOOPBACK": "1"}
    config = load_config(None, env)
    assert config.ice_servers == ("stun:a:1", "turn:b:2")
    assert config.ice_loopback is True
    assert load_config(parser.parse_args(["--ice-loopback"]), {}).ice_loopback is True


def test_loopback_switch_offers_only_127_0_0_1() -> None:
    use_loopback_candidates(True)
    try:
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1"]
    finally:
        use_loopback_candidates(False)
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)


def test_loopback_mode_keeps_only_loopback_remote_candidates() -> None:
    offer = "\r\n".join(
        [
            "v=0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111",
            "a=candidate:1 1 udp 2122194687 127.0.0.1 47743 typ host generation 0",
            "a=candidate:2 1 udp 2122063615 192.0.2.2 51110 typ host generation 0",
            "a=candidate:3 1 udp 2122267903 ::1 35534 typ host generation 0",
            "a=candidate:4 1 udp 2122267903 0e3f.local 35534 typ host generation 0",
            "a=sendrecv",
            "",
        ]
    )
    kept = loopback_only_candidates(offer)
    assert [line for line in kept.split("\r\n") if line.startswith("a=candidate")] == [
        "a=candidate:1 1 udp 2122194687 127.0.0.1 47743 typ host generation 0"
    ]
    assert "a=sendrecv" in kept
    assert "m=audio 9 UDP/TLS/RTP/SAVPF 111" in kept


def test_a_public_address_replaces_host_candidates_in_the_answer() -> None:
    answer = "\r\n".join(
        [
            "v=0",
            "c=IN IP4 10.0.0.5",
            "m=audio 41000 UDP/TLS/RTP/SAVPF 111",
            "a=candidate:1 1 udp 2122194687 10.0.0.5 41000 typ host",
            "a=candidate:2 1 udp 1686052607 198.51.100.9 41000 typ srflx raddr 10.0.0.5 rport 1",
            "a=sendonly",
            "",
        ]
    )
    announced = announce_address(answer, "203.0.113.7").split("\r\n")
    assert "c=IN IP4 203.0.113.7" in announced
    assert "a=candidate:1 1 udp 2122194687 203.0.113.7 41000 typ host" in announced  # same port
    assert answer.split("\r\n")[4] in announced  # a server-reflexive one is left alone
    assert "a=sendonly" in announced
    assert "c=IN IP6 2001:db8::7" in announce_address(answer, "2001:db8::7").split("\r\n")
