"""``liveroom bot``: one bot plays a file into the room, the CLI bot records what it hears."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

from liveroom.app import AUDIO, ROOMS, RunningServer
from liveroom.client import LiveroomClient
from liveroom.client.bot import BotPlan, run_bot
from liveroom.media.mixer import SAMPLE_RATE
from liveroom.rooms.presence import Member
from tests.conftest import TEST_SECRET, make_token
from tests.hearing import band, tones, wav

TONE_HZ = 523


async def test_a_bot_plays_a_file_that_the_cli_bot_records(
    audio_server: RunningServer, tmp_path: Path
) -> None:
    song, heard = tmp_path / "tone.wav", tmp_path / "heard.wav"
    song.write_bytes(wav(tones([(TONE_HZ, 12)], amplitude=0.2)))
    host = await LiveroomClient.connect(audio_server.url, make_token("artist", host=True))
    room_id = (await host.request("room:create", {"title": "Bots"}))["room"]["id"]
    await host.request("room:join", {"room_id": room_id})
    player = asyncio.create_task(
        run_bot(BotPlan(audio_server.url, make_token("dj"), room_id, play=song, seconds=10))
    )
    # Invite the bot once it is in the room; it accepts by itself.
    await _until(
        lambda: (
            audio_server.app[AUDIO].engine.room(room_id) is not None
            and any(m.user_id == "dj" for m in _members(audio_server, room_id))
        )
    )
    await host.request("stage:invite", {"room_id": room_id, "user_id": "dj", "role": "speaker"})
    await host.next_event(
        "room:state",
        lambda s: any(u["id"] == "dj" for u in s["speakers"]) and "dj" not in s["muted"],
        timeout=15,
    )

    listener = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "liveroom",
        "bot",
        "--server",
        audio_server.url,
        "--token",
        make_token("ears"),
        "--room",
        room_id,
        "--listen",
        "--record",
        str(heard),
        "--seconds",
        "4",
        "--ice-loopback",
        env={**os.environ, "LIVEROOM_SECRET": TEST_SECRET},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(listener.communicate(), 60)
    assert listener.returncode == 0, output.decode()
    with wave.open(str(heard), "rb") as recorded:
        assert recorded.getframerate() == SAMPLE_RATE
        pcm = np.frombuffer(recorded.readframes(recorded.getnframes()), dtype=np.int16)
    assert len(pcm) > 2 * SAMPLE_RATE
    assert band(pcm[SAMPLE_RATE:], TONE_HZ) > 0.3
    player.cancel()
    await asyncio.gather(player, return_exceptions=True)
    await host.close()


def _members(server: RunningServer, room_id: str) -> list[Member]:
    return list(server.app[ROOMS].presence.members(room_id))


async def _until(predicate: object, timeout: float = 15) -> None:
    assert callable(predicate)
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)
