"""The encode-once path with real aiortc peers on loopback: one Opus encoder, its packets sent
unchanged through several listeners' senders, decoded by each listener as the original tone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from liveroom.media.feed import FeedTrack, PacketFeed
from liveroom.media.ice import rtc_configuration, use_loopback_candidates
from liveroom.media.mixer import FRAME_SAMPLES, SAMPLE_RATE
from liveroom.media.opus import OpusEncoder, to_pcm

LISTENERS = 3
SECONDS = 2.0


@pytest.fixture(autouse=True)
def loopback() -> Iterator[None]:
    use_loopback_candidates(True)
    yield
    use_loopback_candidates(False)


def peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[int(np.argmax(spectrum))])


async def _record(track: MediaStreamTrack, seconds: float) -> tuple[np.ndarray, list[int]]:
    pcm: list[np.ndarray] = []
    stamps: list[int] = []
    try:
        while sum(len(p) for p in pcm) < seconds * SAMPLE_RATE:
            frame = await asyncio.wait_for(track.recv(), 5)
            assert isinstance(frame, av.AudioFrame)
            assert frame.pts is not None
            pcm.append(to_pcm(frame))
            stamps.append(frame.pts)
    except MediaStreamError:
        pass
    return np.concatenate(pcm), stamps


async def test_one_encoder_feeds_every_listener() -> None:
    config = rtc_configuration([])
    feed = PacketFeed()
    encoder = OpusEncoder()
    servers, clients, recordings = [], [], []
    try:
        for _ in range(LISTENERS):
            server, client = RTCPeerConnection(config), RTCPeerConnection(config)
            servers.append(server)
            clients.append(client)
            server.addTrack(FeedTrack(feed))
            client.addTransceiver("audio", direction="recvonly")
            received: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
            client.on("track", received.set_result)
            await client.setLocalDescription(await client.createOffer())
            await server.setRemoteDescription(client.localDescription)
            await server.setLocalDescription(await server.createAnswer())
            await client.setRemoteDescription(server.localDescription)
            recordings.append(asyncio.create_task(_record(await received, SECONDS)))

        t = np.arange(FRAME_SAMPLES) / SAMPLE_RATE
        encoded = 0
        for tick in range(int(SECONDS * 1.5 * 1000 / 20)):
            pcm = 8000 * np.sin(2 * np.pi * 440 * (t + tick * FRAME_SAMPLES / SAMPLE_RATE))
            packet = encoder.encode(pcm.astype(np.int16), tick * FRAME_SAMPLES)
            if packet is not None:
                feed.publish(packet)
                encoded += 1
            await asyncio.sleep(0.02)
            if all(r.done() for r in recordings):
                break
        results = await asyncio.gather(*recordings)
    finally:
        feed.close()
        await asyncio.gather(*(pc.close() for pc in servers + clients))

    assert encoded <= SECONDS * 1.5 * 50  # one encode per tick, not one per listener
    for samples, stamps in results:
        assert len(samples) >= SECONDS * SAMPLE_RATE
        assert abs(peak_hz(samples[SAMPLE_RATE // 2 :]) - 440) < 5
        # RTP time advances 960 per packet; no gap longer than 60 ms of audio.
        assert max(np.diff(stamps)) <= 3 * FRAME_SAMPLES
