"""ICE set-up for aiortc: configured servers only, and loopback host candidates on request.

aiortc's default ``RTCConfiguration()`` uses a public STUN server, so the engine always passes
the configured list (empty by default): the server never contacts the internet on its own.
aioice leaves 127.0.0.1 out of its host candidates; a loopback-only deployment (the tests, a
single-machine demo) switches it to offer 127.0.0.1 *only*, so no packet leaves the machine.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

_original_host_addresses = aioice.ice.get_host_addresses


def _loopback_only(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


def use_loopback_candidates(on: bool) -> None:
    """Offer only 127.0.0.1 as host candidate (``on``), or the machine's interfaces (default).

    Process-wide: aioice reads this function from its module at every gathering.
    """
    aioice.ice.get_host_addresses = _loopback_only if on else _original_host_addresses


def rtc_configuration(urls: Sequence[str]) -> RTCConfiguration:
    return RTCConfiguration(iceServers=[RTCIceServer(urls=url) for url in urls])


def turn_credentials(secret: str, user_id: str, expires_s: int) -> tuple[str, str]:
    """coturn ``use-auth-secret`` (TURN REST) credentials: ``expiry:user`` and its HMAC-SHA1."""
    username = f"{expires_s}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers_for(
    urls: Sequence[str], turn_secret: str | None, user_id: str, now_s: int, ttl_s: int
) -> list[dict[str, Any]]:
    """The join ack's ``media.ice_servers``: STUN as configured, TURN with time-limited
    credentials when a shared secret is set."""
    servers: list[dict[str, Any]] = []
    for url in urls:
        entry: dict[str, Any] = {"urls": url}
        if turn_secret and url.startswith(("turn:", "turns:")):
            entry["username"], entry["credential"] = turn_credentials(
                turn_secret, user_id, now_s + ttl_s
            )
        servers.append(entry)
    return servers


def loopback_only_candidates(sdp: str) -> str:
    """``sdp`` without remote candidates off 127.0.0.1, so in loopback mode no connectivity
    check is ever sent to another address (a browser offers all its interfaces)."""
    lines = sdp.split("\r\n")
    kept = [
        line
        for line in lines
        if not line.startswith("a=candidate:") or _candidate_address(line) == "127.0.0.1"
    ]
    return "\r\n".join(kept)


def announce_address(sdp: str, address: str) -> str:
    """``sdp`` (our answer) with its host candidates and connection lines carrying ``address``:
    the node's public address where a 1:1 NAT maps it to the private one it listens on (a cloud
    VM's public IP), the ports being the same on both sides. Other candidates are left alone."""
    family = "IP6" if ":" in address else "IP4"

    def announced(line: str) -> str:
        parts = line.split()
        if line.startswith("a=candidate:") and len(parts) > 7 and parts[7] == "host":
            return " ".join([*parts[:4], address, *parts[5:]])
        if line.startswith("c=IN "):
            return f"c=IN {family} {address}"
        return line

    return "\r\n".join(announced(line) for line in sdp.split("\r\n"))


def _candidate_address(line: str) -> str:
    parts = line.split()
    return parts[4] if len(parts) > 4 else ""
