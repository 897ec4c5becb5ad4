"""``--public-address``: a node behind a 1:1 NAT answers offers with the address clients reach."""

from __future__ import annotations

from dataclasses import replace

from aiortc import RTCPeerConnection

from liveroom.app import start_server
from liveroom.client import LiveroomClient
from liveroom.config import Config
from tests.conftest import make_token


async def test_the_answer_names_the_public_address(config: Config) -> None:
    server = await start_server(replace(config, public_address="203.0.113.7"))
    host = await LiveroomClient.connect(server.url, make_token("artist", host=True))
    pc = RTCPeerConnection()
    try:
        room_id = (await host.request("room:create", {"title": "Behind NAT"}))["room"]["id"]
        await host.request("room:join", {"room_id": room_id})
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        offer = {"room_id": room_id, "sdp": pc.localDescription.sdp, "type": "offer"}
        answer = (await host.request("rtc:offer", offer))["sdp"]
    finally:
        await pc.close()
        await host.close()
        await server.stop()
    hosts = [line.split()[4] for line in answer.split("\r\n") if " typ host" in line]
    assert hosts and set(hosts) == {"203.0.113.7"}
