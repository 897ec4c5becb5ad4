"""How late HLS listeners hear the room: a click from a speaker, found in the live segments.

``python bench/hls_latency.py [--seconds 30] [--segment 1.0] [--json]``

A server on loopback (in this process); a host on stage publishes silence with a 100 ms burst
of 1 kHz every 3 s over real WebRTC (aiortc), noting when each burst left its "microphone". This
driver polls ``live.m3u8`` every 50 ms, fetches each new segment, decodes it (PyAV) and finds the
bursts in it. For each burst:

- ``available_s``: from the microphone to the moment the playlist first lists the segment
  holding it (mixing, AAC encoding, the segment filling up, the playlist rewrite);
- ``player_s``: what a player hears, ``available_s`` + the hold-back a player keeps behind the
  live edge: hls.js's default is 3 target durations (``liveSyncDurationCount: 3``);
  ``player_2_s`` with 2, what the web client uses and ``media.hls_delay_ms`` announces.

The goal is ≤ 3 s glass to glass with 1 s segments (Periscope's low-latency HLS aimed at 2–5 s).
Prints a table, or JSON with ``--json``. Bounded by ``--seconds``; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from liveroom.app import start_server
from liveroom.auth import Grants, Identity, TokenService
from liveroom.client import LiveroomClient
from liveroom.client.audio import open_audio
from liveroom.client.hls import decode_segment
from liveroom.clock import SystemClock
from liveroom.config import Config
from liveroom.media.mixer import FRAME_SAMPLES, SAMPLE_RATE

BURST_EVERY_S = 3.0
BURST_FRAMES = 5  # 100 ms
SECRET = "hls-latency-bench-secret-" + "x" * 16


class ClickTrack(MediaStreamTrack):
    """Silence, with a 1 kHz burst every few seconds; ``sent`` holds when each burst began."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        t = np.arange(FRAME_SAMPLES) / SAMPLE_RATE
        self._burst = (12000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
        self._silence = np.zeros(FRAME_SAMPLES, np.int16)
        self._n = 0
        self._start: float | None = None
        self.sent: list[float] = []

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._n * FRAME_SAMPLES / SAMPLE_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        every = round(BURST_EVERY_S * SAMPLE_RATE / FRAME_SAMPLES)
        phase = self._n % every
        bursting = self._n >= every and phase < BURST_FRAMES
        if bursting and phase == 0:
            self.sent.append(time.monotonic())
        pcm = self._burst if bursting else self._silence
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts = SAMPLE_RATE, self._n * FRAME_SAMPLES
        self._n += 1
        return frame


def onsets(pcm: np.ndarray) -> list[int]:
    """Sample offsets where a burst starts (10 ms windows crossing a loudness threshold)."""
    window = SAMPLE_RATE // 100
    loud = [
        float(np.sqrt(np.mean(np.square(pcm[i : i + window], dtype=np.float64)))) > 2000
        for i in range(0, len(pcm) - window + 1, window)
    ]
    return [n * window for n, on in enumerate(loud) if on and (n == 0 or not loud[n - 1])]


async def measure(seconds: float, segment_s: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        config = replace(
            Config(),
            port=0,
            host="127.0.0.1",
            data_dir=Path(tmp),
            secret=SECRET,
            ice_loopback=True,
            hls_segment_s=segment_s,
        )
        server = await start_server(config)
        tokens = TokenService(SECRET, SystemClock(), 3600)
        token = tokens.issue(Identity("dj", "DJ", grants=Grants(host=True)), 3600)
        host = await LiveroomClient.connect(server.url, token)
        click = ClickTrack()
        try:
            room_id = (await host.request("room:create", {"title": "Latency"}))["room"]["id"]
            await host.request("room:join", {"room_id": room_id})
            await host.request("stage:unmute", {"room_id": room_id})
            session = await open_audio(host, room_id, publish=click)
            found: list[tuple[float, float]] = []  # (available at, burst media offset)
            seen: set[str] = set()
            base = f"{server.url}/hls/{room_id}"
            deadline = time.monotonic() + seconds
            async with aiohttp.ClientSession() as http:
                while time.monotonic() < deadline:
                    async with http.get(f"{base}/live.m3u8") as r:
                        text = await r.text() if r.status == 200 else ""
                    now = time.monotonic()
                    for uri in [line for line in text.splitlines() if line.endswith(".ts")]:
                        if uri in seen:
                            continue
                        seen.add(uri)
                        async with http.get(f"{base}/{uri}") as r:
                            pcm = decode_segment(await r.read())
                        found += [(now, offset / SAMPLE_RATE) for offset in onsets(pcm)]
                    await asyncio.sleep(0.05)
            await session.close()
        finally:
            await host.close()
            await server.stop()
    # The k-th burst found is the k-th burst sent (the first ones may predate the connection).
    pairs = list(zip(click.sent, found, strict=False))
    available = [at - sent for sent, (at, _) in pairs if at > sent]
    if not available:
        return {"error": "no burst was found in the segments", "bursts_sent": len(click.sent)}
    median = statistics.median(available)
    return {
        "segment_s": segment_s,
        "bursts": len(available),
        "available_s": {"median": round(median, 3), "max": round(max(available), 3)},
        "player_s": round(median + 3 * segment_s, 3),
        "player_2_s": round(median + 2 * segment_s, 3),
        "goal_s": 3.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--segment", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(measure(args.seconds, args.segment))
    if not args.json:  # the table; the JSON line comes last either way, as in every bench
        for key, value in result.items():
            print(f"{key:>14}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
