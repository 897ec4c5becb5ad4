"""Audio through a real server with real aiortc peers on loopback, judged by what was heard
(FFT over seconds, RTP timestamps), with slack for a loaded 2-core machine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender

from liveroom.app import AUDIO, RunningServer
from liveroom.client import CallFailed, LiveroomClient
from liveroom.client.audio import ToneTrack, open_audio
from liveroom.media.mixer import FRAME_SAMPLES, SAMPLE_RATE
from tests.conftest import make_token
from tests.hearing import band, until_heard
from tests.peers import Peers

A_HZ, B_HZ = 440, 660


class Stage(Peers):
    """A live room: host A speaking 440 Hz, speaker B 660 Hz, listener L recording."""

    async def setup(self) -> None:
        self.a = await self.client("a", host=True)
        self.room_id = (await self.a.request("room:create", {"title": "Tones"}))["room"]["id"]
        joined = await self.a.request("room:join", {"room_id": self.room_id})
        assert joined["media"]["mode"] == "webrtc"
        self.b = await self.client("b")
        self.listener = await self.client("l")
        for c in (self.b, self.listener):
            await c.request("room:join", {"room_id": self.room_id})
        await self.a.request(
            "stage:invite", {"room_id": self.room_id, "user_id": "b", "role": "speaker"}
        )
        await self.b.request("stage:accept", {"room_id": self.room_id})
        for c in (self.a, self.b):  # new microphones start muted
            await c.request("stage:unmute", {"room_id": self.room_id})
        self.a_audio = await self.audio(self.a, self.room_id, A_HZ)
        self.b_audio = await self.audio(self.b, self.room_id, B_HZ)
        self.l_audio = await self.audio(self.listener, self.room_id, None)


@pytest.fixture
async def stage(audio_server: RunningServer) -> AsyncIterator[Stage]:
    room = Stage(audio_server)
    await room.setup()
    yield room
    await room.close()


async def test_listener_hears_both_speakers_without_gaps(stage: Stage) -> None:
    heard = stage.l_audio.recording
    await until_heard(heard, 6)
    pcm = heard.pcm()[SAMPLE_RATE : 6 * SAMPLE_RATE]  # past the first second's set-up
    assert band(pcm, A_HZ) > 0.2
    assert band(pcm, B_HZ) > 0.2
    stamps = np.array(heard.stamps)
    later = stamps[stamps >= stamps[0] + SAMPLE_RATE]
    assert np.max(np.diff(later)) <= 3 * FRAME_SAMPLES  # no gap over 60 ms of RTP time


async def test_speaking_levels_reach_the_room_at_most_4_per_second(stage: Stage) -> None:
    started = time.monotonic()
    await until_heard(stage.l_audio.recording, 3)
    loud = await stage.listener.next_event(
        "speaking", lambda e: {"a", "b"} <= set(e["levels"]), timeout=10
    )
    assert loud["room_id"] == stage.room_id
    assert all(-40 < loud["levels"][u] <= 0 for u in ("a", "b"))
    # Steady tones: a few messages as the speakers come in, none while nothing changes.
    sent = len(stage.listener.events("speaking")) + 1
    assert sent <= 4 * (time.monotonic() - started) + 1


async def test_speakers_hear_each_other_but_not_themselves(stage: Stage) -> None:
    await until_heard(stage.a_audio.recording, 4)
    await until_heard(stage.b_audio.recording, 4)
    a_hears = stage.a_audio.recording.pcm()[SAMPLE_RATE:]
    b_hears = stage.b_audio.recording.pcm()[SAMPLE_RATE:]
    assert band(a_hears, B_HZ) > 0.5
    assert band(a_hears, A_HZ) < 0.01
    assert band(b_hears, A_HZ) > 0.5
    assert band(b_hears, B_HZ) < 0.01


async def test_mute_unmute_and_demote_act_within_half_a_second(stage: Stage) -> None:
    heard = stage.l_audio.recording
    await until_heard(heard, 3)

    async def window_after(action_at: float, seconds: float = 1.5) -> np.ndarray:
        start = heard.sample_at(action_at) + SAMPLE_RATE // 2  # half a second of audio later
        await until_heard(heard, (start / SAMPLE_RATE) + seconds)
        return heard.pcm()[start : start + int(seconds * SAMPLE_RATE)]

    await stage.a.request("stage:mute", {"room_id": stage.room_id, "user_id": "b"})
    muted = await window_after(time.monotonic())
    assert band(muted, B_HZ) < 0.01
    assert band(muted, A_HZ) > 0.5

    await stage.b.request("stage:unmute", {"room_id": stage.room_id})
    back = await window_after(time.monotonic())
    assert band(back, B_HZ) > 0.2

    await stage.a.request("stage:demote", {"room_id": stage.room_id, "user_id": "b"})
    restart = await stage.b.next_event("rtc:restart")
    assert restart["room_id"] == stage.room_id
    demoted = await window_after(time.monotonic())
    assert band(demoted, B_HZ) < 0.01
    # Whether or not B's client offers again, the server no longer decodes or encodes for B.
    assert not stage.server.app[AUDIO].engine.is_publishing(stage.room_id, "b")


async def test_a_listener_offering_to_publish_is_never_mixed(stage: Stage) -> None:
    intruder = await stage.client("intruder")
    await intruder.request("room:join", {"room_id": stage.room_id})
    await stage.audio(intruder, stage.room_id, 880)  # sendrecv offer from a listener
    heard = stage.l_audio.recording
    start = heard.sample_at(time.monotonic())
    await until_heard(heard, start / SAMPLE_RATE + 3)
    assert band(heard.pcm()[start:], 880) < 0.01


async def test_ending_the_room_leaves_no_peer_or_mixer_behind(
    stage: Stage, audio_server: RunningServer
) -> None:
    engine = audio_server.app[AUDIO].engine
    assert engine.open_rooms == 1
    assert engine.peer_connections == 3
    await stage.a.request("room:end", {"room_id": stage.room_id})
    await stage.listener.next_event("room:ended")
    assert engine.open_rooms == 0
    assert engine.peer_connections == 0
    mixers = [t for t in asyncio.all_tasks() if t.get_name().startswith("mixer-")]
    assert mixers == []


async def test_offers_racing_each_other_leave_one_connection(stage: Stage) -> None:
    engine_room = stage.server.app[AUDIO].engine.room(stage.room_id)
    assert engine_room is not None
    extra = await stage.client("racer")
    await extra.request("room:join", {"room_id": stage.room_id})
    sessions = await asyncio.gather(*(open_audio(extra, stage.room_id) for _ in range(3)))
    assert "racer" in engine_room.peers
    assert len(engine_room.peers) == 4  # a, b, the listener and one for the racer
    for session in sessions:
        await session.close()
    bad = await extra.call(
        "rtc:offer", {"room_id": stage.room_id, "sdp": "v=0\r\nnonsense", "type": "offer"}
    )
    assert bad["error"]["code"] == "invalid"


async def test_offers_are_opus_only_one_section_and_members_only(stage: Stage) -> None:
    # Only the first audio section is used; any other gets no receiver (inactive).
    extra = await stage.client("extra")
    await extra.request("room:join", {"room_id": stage.room_id})
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTrack(ToneTrack(880))
        await pc.setLocalDescription(await pc.createOffer())
        answer = await extra.request(
            "rtc:offer", {"room_id": stage.room_id, "sdp": pc.localDescription.sdp, "type": "offer"}
        )
    finally:
        await pc.close()
    sections = answer["sdp"].split("m=audio")[1:]
    assert "a=sendonly" in sections[0]
    assert all("a=inactive" in section for section in sections[1:])
    assert "opus/48000" in sections[0].lower()

    # An offer without Opus is refused.
    pcmu = RTCPeerConnection()
    try:
        transceiver = pcmu.addTransceiver("audio", direction="recvonly")
        transceiver.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == "audio/PCMU"]
        )
        await pcmu.setLocalDescription(await pcmu.createOffer())
        refused = await extra.call(
            "rtc:offer",
            {"room_id": stage.room_id, "sdp": pcmu.localDescription.sdp, "type": "offer"},
        )
    finally:
        await pcmu.close()
    assert refused["error"]["code"] == "invalid"

    # An admin (staff in any room) who has not joined gets no connection: its owner would be
    # a presence that does not exist.
    admin = await LiveroomClient.connect(stage.server.url, make_token("ops", admin=True))
    stage.clients.append(admin)
    with pytest.raises(CallFailed) as not_joined:
        await open_audio(admin, stage.room_id)
    assert not_joined.value.code == "forbidden"
