"""ICE configuration: only configured servers; TURN credentials coturn will accept."""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac

import aioice.ice

from liveroom.config import add_arguments, load_config
from liveroom.media.ice import ice_servers_for, rtc_configuration, use_loopback_candidates


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
