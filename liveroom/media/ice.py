"""ICE set-up for aiortc: configured servers only, and loopback host candidates on request.

aiortc's default ``RTCConfiguration()`` uses a public STUN server, so the engine always passes
the configured list (empty by default): the server never contacts the internet on its own.
aioice leaves 127.0.0.1 out of its host candidates; a loopback-only deployment (the tests, a
single-machine demo) switches it to offer 127.0.0.1 *only*, so no packet leaves the machine.
"""

from __future__ import annotations

from collections.abc import Sequence

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
