"""DJ mode through a real server: the room plays an uploaded file into its own audio, heard by a
real aiortc listener (FFT over seconds); play, pause and seek act on it; a speaker ducks it."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from liveroom.app import AUDIO, RunningServer
from liveroom.client.audio import Recording
from liveroom.media.mixer import SAMPLE_RATE, Pcm
from liveroom.media.room import RoomMedia
from tests.conftest import make_token
from tests.hearing import band, band_energy, tones, wav
from tests.peers import Peers, uploaded

FIRST_HZ, SECOND_HZ, VOICE_HZ = 440, 990, 660
SWITCH_S = 15.0  # the file: FIRST_HZ until here, then SECOND_HZ
SETTLE_S = 0.6  # the listener's jitter buffer and the scheduled start, with slack


class DjRoom(Peers):
    """A live room in DJ mode: the host (muted, on a 660 Hz microphone) and a listener."""

    async def setup(self) -> None:
        self.host = await self.client("artist", "Artist", host=True)
        room = await self.host.request(
            "room:create", {"title": "Listening party", "settings": {"playlist_output": "room"}}
        )
        self.room_id = room["room"]["id"]
        await self.host.request("room:join", {"room_id": self.room_id})
        self.fan = await self.client("fan", "Fan")
        await self.fan.request("room:join", {"room_id": self.room_id})
        self.heard = (await self.audio(self.fan, self.room_id, None)).recording
        self.host_audio = await self.audio(self.host, self.room_id, VOICE_HZ)
        song = wav(tones([(FIRST_HZ, SWITCH_S), (SECOND_HZ, 15.0)], amplitude=0.25))
        token = make_token("artist", "Artist", host=True)
        media = await uploaded(self.server, self.room_id, token, "Two tones.wav", song)
        add = {"room_id": self.room_id, "media_id": media["id"]}
        self.item = (await self.host.request("playlist:add", add))["item"]

    @property
    def media(self) -> RoomMedia:
        room = self.server.app[AUDIO].engine.room(self.room_id)
        assert room is not None
        return room

    async def control(self, event: str, **payload: object) -> dict[str, object]:
        answer = await self.host.request(event, {"room_id": self.room_id, **payload})
        playback: dict[str, object] = answer["playback"]
        return playback


async def heard_next(recording: Recording, seconds: float, after: float) -> Pcm:
    """The next ``seconds`` of what was heard, from ``after`` (wall time, monotonic) on."""
    await asyncio.sleep(max(0.0, after - time.monotonic()))
    start = recording.sample_at(time.monotonic())
    need = start + round(seconds * SAMPLE_RATE)
    async with asyncio.timeout(seconds + 20):
        while recording.seconds * SAMPLE_RATE < need:
            await asyncio.sleep(0.05)
    return recording.pcm()[start:need]


def settled(playback: dict[str, object]) -> float:
    """Monotonic time by which a scheduled start has been heard."""
    at = playback["at"]
    assert isinstance(at, int)
    return time.monotonic() + max(0.0, at / 1000 - time.time()) + SETTLE_S


def rms(pcm: Pcm) -> float:
    return float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64))))


@pytest.fixture
async def dj(audio_server: RunningServer) -> AsyncIterator[DjRoom]:
    room = DjRoom(audio_server)
    await room.setup()
    yield room
    await room.close()


async def test_the_room_plays_pauses_and_seeks_its_playlist(dj: DjRoom) -> None:
    playing = await dj.control("playlist:play")
    music = await heard_next(dj.heard, 2.0, settled(playing))
    assert band(music, FIRST_HZ) > 0.5 and band(music, SECOND_HZ) < 0.01
    assert rms(music) > 2000

    paused = await dj.control("playlist:pause")
    assert paused["playing"] is False
    quiet = await heard_next(dj.heard, 1.5, time.monotonic() + SETTLE_S)
    assert rms(quiet) < 100  # nothing but the codec's floor

    await dj.control("playlist:seek", position_s=SWITCH_S + 2)
    resumed = await dj.control("playlist:play")
    assert resumed["position_s"] == SWITCH_S + 2
    later = await heard_next(dj.heard, 2.0, settled(resumed))
    assert band(later, SECOND_HZ) > 0.5 and band(later, FIRST_HZ) < 0.01

    # Seeking back while playing: the first tone again.
    back = await dj.control("playlist:seek", position_s=1.0)
    again = await heard_next(dj.heard, 2.0, settled(back))
    assert band(again, FIRST_HZ) > 0.5 and band(again, SECOND_HZ) < 0.01

    deck = dj.media.deck
    assert deck is not None and deck.stats.frames > 100


async def test_the_music_ducks_while_a_speaker_talks(dj: DjRoom) -> None:
    playing = await dj.control("playlist:play")
    alone = await heard_next(dj.heard, 2.0, settled(playing))
    await dj.host.request("stage:unmute", {"room_id": dj.room_id})
    talking = await heard_next(dj.heard, 2.0, time.monotonic() + SETTLE_S)
    assert band(talking, VOICE_HZ) > 0.2  # the host is heard over the music
    ducked_db = 10 * math.log10(band_energy(alone, FIRST_HZ) / band_energy(talking, FIRST_HZ))
    assert 6 <= ducked_db <= 14

    await dj.host.request("stage:mute", {"room_id": dj.room_id, "user_id": "artist"})
    after = await heard_next(dj.heard, 2.0, time.monotonic() + SETTLE_S + 0.4)  # held 400 ms
    back_db = 10 * math.log10(band_energy(alone, FIRST_HZ) / band_energy(after, FIRST_HZ))
    assert abs(back_db) < 1.5  # and back to full level


async def test_clients_mode_leaves_the_room_silent_and_switching_starts_the_deck(
    dj: DjRoom,
) -> None:
    await dj.host.request(
        "room:update", {"room_id": dj.room_id, "settings": {"playlist_output": "clients"}}
    )
    playing = await dj.control("playlist:play")
    quiet = await heard_next(dj.heard, 1.5, settled(playing) + 1.0)
    assert rms(quiet) < 100 and dj.media.deck is None  # the fans' own players play it

    await dj.host.request(
        "room:update", {"room_id": dj.room_id, "settings": {"playlist_output": "room"}}
    )
    music = await heard_next(dj.heard, 2.0, time.monotonic() + SETTLE_S)
    assert band(music, FIRST_HZ) > 0.5  # joined mid-song, from where the room is
