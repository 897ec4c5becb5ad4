"""Mouth-to-ear delay the server adds, with and without network jitter, and join → first audio.

``python bench/latency.py [--bursts 20] [--joins 10] [--jitter-ms 10] [--json]``

A server (``liveroom serve``) pinned to core 0 (``taskset -c 0``); everything else — this driver
with its speakers and listeners, and the jitter relay — on core 1. Loopback only.

**Bursts.** A speaker (aiortc, ``ClickTrack``) sends silence with a ``--burst-ms`` (20) burst of
1 kHz every ``--interval`` (1 s); a listener (aiortc) decodes what it receives, and each burst's
onset is found in the decoded audio. The delay of a burst is *heard − spoken*, both on
``time.monotonic`` (one clock for every process of the machine):

- **spoken**: the speaker's media clock, not when anything was queued. The track is a stand-in
  microphone: its frame *n* (pts = 960·n) holds audio spoken from ``t0 + n·20 ms``, where ``t0``
  is when aiortc's sender first asked it for a frame, and ``recv()`` hands frame *n* over no
  earlier than that. A burst starts on a frame boundary, so it was spoken at
  ``t0 + pts / 48000``. If the sender asks late (a busy loop), that lateness counts in the
  delay, as a late capture would (``detail.pacing_late_ms`` shows it: how much later than its
  media time each burst frame was handed to the sender).
- **heard**: the listener is a real aiortc receiver — SRTP, its jitter buffer
  (capacity 16, prefetch 4), the Opus decoder thread — read by ``track.recv()`` in a loop
  (``liveroom.client.audio.record``), which notes ``time.monotonic()`` as each frame is
  returned. The onset is the first sample whose magnitude passes ``ONSET_LEVEL`` (¼ of the
  burst's amplitude) after at least half an interval of quiet, confirmed by an FFT of the 20 ms
  that follow (most energy within ±100 Hz of 1 kHz). Heard = the arrival of the frame holding
  it + its offset in that frame / 48 kHz: the moment a player starting that frame on arrival
  would play it. The codec's own delay (Opus look-ahead) is therefore part of every figure.
- Bursts are paired with what was heard by time: the first onset within 0.9 interval after a
  burst was spoken is that burst's (``missed`` / ``spurious`` count the rest).

Two topologies, one after the other, in the same run:

1. **baseline**: the speaker connected peer-to-peer to the listener (both aiortc, in this
   driver): one encode, one network leg, one jitter buffer, one decode.
2. **liveroom**: the speaker is the host of a live room, on stage and unmuted, publishing
   through the normal ``rtc:offer`` path (``sendrecv``; the mix-minus it gets back is read and
   dropped); the listener (in this driver too) joins with its own token and offers
   ``recvonly``. On top of the baseline's path the server adds a second leg, its receiver
   (aiortc's jitter buffer, the decoder), the speaker's inbound frames (a FIFO of ≤ 4 that the
   mixer takes one frame a tick from), the wait for the next 20 ms mixer tick, the mix, the
   encode of the program feed and its packetization.

``server_added_ms`` = median(liveroom) − median(baseline). Each section's ``series_ms`` lists
every burst's delay in the order spoken: a delay that steps up during a run (a buffer that
filled and does not drain) shows there, and in the table's min/max, rather than in the median.

**Jitter** (``--jitter-ms`` > 0): the same two measurements with the speaker's leg going
through ``bench/jitter_relay.py``, a UDP relay (in its own process) that holds each datagram
``--delay-ms`` ± ``--jitter-ms`` (20 ± 10 ms, uniform, both directions). The speaker's offer and
the answer it gets have their candidate port rewritten to the relay's sockets, so all of that
leg's ICE, DTLS, RTP and RTCP passes through it. Only the speaker's leg: it is the path both
topologies share (speaker → listener, speaker → server), and the leg whose jitter the server's
own receiver must absorb; the server → listener leg stays clean. ``tc qdisc … netem`` would
have been the kernel's way, but this kernel has no ``sch_netem`` (nor ``prio``): on such a
machine the relay is what works; ``jitter.relay`` shows the delays it drew and how late its
event loop sent (≈ 1 ms at the median). ``--no-jitter`` skips this part.

**Join → first audio** (``--joins`` K): while the host sends a continuous 1 kHz tone, K new
listeners, one after another, each on its own connected socket: from the ``room:join`` emit
(and from the ``rtc:offer`` emit) to the arrival of the first decoded frame with signal (peak ≥
``ONSET_LEVEL``). The steps are in ``detail.join_steps_ms``: join ack, ICE gathering of the
offer, the answer, ICE + DTLS until connected, first frame, first frame with signal. For
comparison ``baseline_offer_to_first_audio_ms``: a fresh peer-to-peer pair, from its offer to
its first heard frame.

Goals (shown, not asserted): server-added ≤ 40 ms, join → first audio ≤ 500 ms.
Prints a table, then one JSON line (``--json``: only that line). Bounded by ``--timeout``; every
process started here is killed at the end and dies with this driver (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.listeners import (
    LOAD_CPU,
    SERVER_CPU,
    Processes,
    _two_cores,
    die_with_parent,
    drive,
    free_port,
    pin,
    server,
    server_env,
)
from liveroom.auth import Grants, Identity, TokenService
from liveroom.client import LiveroomClient
from liveroom.client.audio import Recording, open_audio, record
from liveroom.clock import SystemClock
from liveroom.media.ice import rtc_configuration, use_loopback_candidates
from liveroom.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Pcm

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
TONE_HZ = 1000
AMPLITUDE = 12_000
ONSET_LEVEL = AMPLITUDE // 4
TONE_SHARE = 0.5  # of a burst's first 20 ms energy within ±100 Hz of the tone
PAIR_WINDOW = 0.9  # of the interval: an onset this long after a burst is that burst's
LEAD_S = 0.5  # from scheduling the bursts to the first one
LISTEN_TIMEOUT_S = 20.0
RATE_LIMITS = (
    "events=100000/1,events_per_ip=100000/1,connects=100000/1,connects_per_ip=100000/1,"
    "guest_tokens=100000/1,joins=100000/1,joins_per_ip=100000/1,offers=100000/1,"
    "offers_per_ip=100000/1"
)
GOAL_SERVER_ADDED_MS = 40.0
GOAL_JOIN_MS = 500.0
RELAY_SCRIPT = str(Path(__file__).resolve().parent / "jitter_relay.py")


def now() -> float:
    return time.monotonic()


# --- the speaker: a stand-in microphone with bursts on its own media clock -------------------


@dataclass(frozen=True, slots=True)
class Spoken:
    """One burst: when its first sample was spoken — the media clock, ``t0 + pts / 48000`` — and
    when its frame was actually handed to aiortc's sender (never earlier)."""

    media: float
    handed: float


def _sine(samples: int) -> Pcm:
    t = np.arange(samples) / SAMPLE_RATE
    return (AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)


class ClickTrack(MediaStreamTrack):
    """Silence (or, with ``tone = True``, a continuous 1 kHz tone), with bursts of 1 kHz on
    scheduled frames, paced in real time: frame *n* is handed over no earlier than
    ``t0 + n·20 ms``."""

    kind = "audio"

    def __init__(self, burst_ms: float) -> None:
        super().__init__()
        samples = max(1, round(burst_ms * SAMPLE_RATE / 1000))
        frames = -(-samples // FRAME_SAMPLES)
        burst = np.zeros(frames * FRAME_SAMPLES, np.int16)
        burst[:samples] = _sine(samples)
        self._burst = np.split(burst, frames)
        self._silence = np.zeros(FRAME_SAMPLES, np.int16)
        self._tone = _sine(FRAME_SAMPLES)  # 1 kHz: exactly 20 cycles a frame
        self.tone = False
        self.spoken: list[Spoken] = []
        self._starts: set[int] = set()
        self._in_burst: int | None = None
        self._n = 0
        self._t0: float | None = None

    def schedule(self, count: int, interval_s: float, lead_s: float) -> None:
        """``count`` bursts, ``interval_s`` apart, the first ``lead_s`` from now."""
        first = self._n + round(lead_s / FRAME_S)
        step = max(1, round(interval_s / FRAME_S))
        self._starts = {first + i * step for i in range(count)}

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = now()
        media = self._t0 + self._n * FRAME_S
        wait = media - now()
        if wait > 0:
            await asyncio.sleep(wait)
        if self._n in self._starts:
            self._starts.discard(self._n)
            self._in_burst = 0
            self.spoken.append(Spoken(media, now()))
        if self._in_burst is not None:
            pcm = self._burst[self._in_burst]
            self._in_burst += 1
            if self._in_burst == len(self._burst):
                self._in_burst = None
        else:
            pcm = self._tone if self.tone else self._silence
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._n * FRAME_SAMPLES
        frame.time_base = TIME_BASE
        self._n += 1
        return frame

    @property
    def pending(self) -> int:
        return len(self._starts)


# --- finding the bursts in what was heard ----------------------------------------------------


def tone_share(segment: np.ndarray, hz: float = TONE_HZ) -> float:
    """Share of ``segment``'s energy within ±100 Hz of ``hz`` (Hann window)."""
    if len(segment) < 64:
        return 0.0
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)))) ** 2
    freqs = np.fft.rfftfreq(len(segment), 1 / SAMPLE_RATE)
    total = float(spectrum.sum())
    if total <= 0:
        return 0.0
    return float(spectrum[np.abs(freqs - hz) <= 100].sum()) / total


def heard_onsets(rec: Recording, min_gap_s: float) -> list[float]:
    """When each burst's onset was heard (monotonic): the first sample past ``ONSET_LEVEL``
    after ``min_gap_s`` of quiet, at the arrival of its frame + its offset in that frame."""
    if not rec.chunks:
        return []
    pcm = rec.pcm().astype(np.float64)
    loud = np.flatnonzero(np.abs(pcm) >= ONSET_LEVEL)
    if len(loud) == 0:
        return []
    gap = round(min_gap_s * SAMPLE_RATE)
    starts = loud[np.concatenate(([True], np.diff(loud) > gap))]
    lengths = np.array([len(c) for c in rec.chunks])
    ends = np.cumsum(lengths)
    heard: list[float] = []
    for onset in starts:
        if tone_share(pcm[onset : onset + FRAME_SAMPLES]) < TONE_SHARE:
            continue
        chunk = int(np.searchsorted(ends, onset, side="right"))
        offset = int(onset - (ends[chunk] - lengths[chunk]))
        heard.append(rec.arrivals[chunk] + offset / SAMPLE_RATE)
    return heard


@dataclass
class Bursts:
    """One topology's bursts: each one's delay (ms; None: not heard), in the order spoken."""

    series_ms: list[float | None] = field(default_factory=list)
    onsets: int = 0
    pacing_late_ms: list[float] = field(default_factory=list)

    @property
    def delays_ms(self) -> list[float]:
        return [d for d in self.series_ms if d is not None]

    @property
    def spurious(self) -> int:
        return self.onsets - len(self.delays_ms)

    def as_json(self) -> dict[str, Any]:
        heard = len(self.delays_ms)
        return {
            **quantiles(self.delays_ms),
            "spoken": len(self.series_ms),
            "heard": heard,
            "missed": len(self.series_ms) - heard,
            "spurious": self.spurious,
            "series_ms": [None if d is None else round(d, 1) for d in self.series_ms],
        }


def pair_up(spoken: Sequence[Spoken], heard: Sequence[float], window_s: float) -> Bursts:
    out = Bursts(onsets=len(heard))
    free = sorted(heard)
    for burst in spoken:
        match = next((h for h in free if burst.media <= h < burst.media + window_s), None)
        out.pacing_late_ms.append((burst.handed - burst.media) * 1000)
        if match is not None:
            free.remove(match)
        out.series_ms.append(None if match is None else (match - burst.media) * 1000)
    return out


def quantiles(values_ms: Sequence[float]) -> dict[str, Any]:
    if not values_ms:
        return {"p50": None, "p95": None, "min": None, "max": None, "n": 0}
    arr = np.asarray(values_ms, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(arr, 50)), 1),
        "p95": round(float(np.percentile(arr, 95)), 1),
        "min": round(float(arr.min()), 1),
        "max": round(float(arr.max()), 1),
        "n": len(arr),
    }


# --- the jitter relay and SDP port rewriting -------------------------------------------------


def candidate_port(sdp: str) -> int:
    """The one UDP port of ``sdp``'s 127.0.0.1 host candidates (loopback mode gathers one)."""
    ports = {
        int(parts[5])
        for line in sdp.splitlines()
        if line.startswith("a=candidate:")
        and len(parts := line.split()) > 7
        and parts[2].lower() == "udp"
        and parts[4] == "127.0.0.1"
    }
    if len(ports) != 1:
        raise RuntimeError(f"expected one loopback UDP candidate port, found {sorted(ports)}")
    return ports.pop()


def with_port(sdp: str, old: int, new: int) -> str:
    """``sdp`` with the candidates (and media lines) on port ``old`` moved to ``new``."""

    def moved(line: str) -> str:
        parts = line.split(" ")
        if line.startswith("a=candidate:") and len(parts) > 5 and parts[5] == str(old):
            parts[5] = str(new)
        elif line.startswith("m=") and len(parts) > 1 and parts[1] == str(old):
            parts[1] = str(new)
        return " ".join(parts)

    return "\r\n".join(moved(line) for line in sdp.split("\r\n"))


class Relay:
    """``bench/jitter_relay.py`` in its own process (pinned with the load), driven by lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self._lock = asyncio.Lock()

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, delay_ms: float, jitter_ms: float) -> AsyncIterator[Relay]:
        taskset = ["taskset", "-c", str(LOAD_CPU)] if _two_cores() else []
        proc = await asyncio.create_subprocess_exec(
            *taskset,
            sys.executable,
            RELAY_SCRIPT,
            "--delay-ms",
            str(delay_ms),
            "--jitter-ms",
            str(jitter_ms),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent,  # only a prctl in the child: no thread-safety concern
        )
        try:
            yield cls(proc)
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                async with asyncio.timeout(5):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def command(self, line: str) -> str:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        async with self._lock, asyncio.timeout(10):
            self.proc.stdin.write(line.encode() + b"\n")
            await self.proc.stdin.drain()
            answer = (await self.proc.stdout.readline()).decode().strip()
        if not answer or answer.startswith("error"):
            raise RuntimeError(f"jitter relay: {line!r} → {answer!r}")
        return answer

    async def stats(self) -> dict[str, Any]:
        return dict(json.loads(await self.command("stats")))


Exchange = Callable[[str], Awaitable[str]]


async def negotiate(pc: RTCPeerConnection, exchange: Exchange, relay: Relay | None) -> None:
    """Offer from ``pc``, get the answer through ``exchange``; with ``relay``, both ends see the
    relay's sockets as the other's candidate, so the whole leg passes through it."""
    await pc.setLocalDescription(await pc.createOffer())
    offer = pc.localDescription.sdp
    if relay is None:
        answer = await exchange(offer)
    else:
        own = candidate_port(offer)
        a, b = map(int, (await relay.command(f"pair {own}")).split())
        answer = await exchange(with_port(offer, own, b))
        remote = candidate_port(answer)
        await relay.command(f"remote {a} {remote}")
        answer = with_port(answer, remote, a)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))


# --- connections -----------------------------------------------------------------------------


async def drain(track: MediaStreamTrack) -> None:
    """Read and drop a track nobody listens to (every received track must be consumed)."""
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


@dataclass
class Peers:
    """Peer connections and reader tasks opened for one measurement, closed together."""

    pcs: list[RTCPeerConnection] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(rtc_configuration([]))
        self.pcs.append(pc)
        return pc

    def read(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            await coro

        self.tasks.append(asyncio.create_task(run()))

    async def close(self) -> None:
        await asyncio.gather(*(pc.close() for pc in self.pcs), return_exceptions=True)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.pcs.clear()
        self.tasks.clear()


def on_track(pc: RTCPeerConnection) -> asyncio.Future[MediaStreamTrack]:
    arrived: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def _on_track(track: MediaStreamTrack) -> None:
        if not arrived.done():
            arrived.set_result(track)

    return arrived


async def p2p(peers: Peers, track: MediaStreamTrack, relay: Relay | None) -> Recording:
    """A speaker publishing ``track`` straight to a listener; what the listener hears."""
    speaker, listener = peers.pc(), peers.pc()
    speaker.addTrack(track)
    arrived = on_track(listener)

    async def exchange(offer: str) -> str:
        await listener.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        for transceiver in listener.getTransceivers():
            transceiver.direction = "recvonly"
        await listener.setLocalDescription(await listener.createAnswer())
        return str(listener.localDescription.sdp)

    await negotiate(speaker, exchange, relay)
    heard = Recording()
    peers.read(record(await asyncio.wait_for(arrived, LISTEN_TIMEOUT_S), heard))
    return heard


async def liveroom_speaker(
    peers: Peers, host: LiveroomClient, room_id: str, track: MediaStreamTrack, relay: Relay | None
) -> None:
    """The host's microphone, offered ``sendrecv`` through ``rtc:offer``; the mix-minus it gets
    back is drained."""
    pc = peers.pc()
    pc.addTrack(track)
    arrived = on_track(pc)

    async def exchange(offer: str) -> str:
        ack = await host.request(
            "rtc:offer",
            {"room_id": room_id, "sdp": offer, "type": "offer"},
            timeout=LISTEN_TIMEOUT_S,
        )
        return str(ack["sdp"])

    await negotiate(pc, exchange, relay)
    peers.read(drain(await asyncio.wait_for(arrived, LISTEN_TIMEOUT_S)))


async def wait_until(done: Callable[[], bool], every_s: float) -> None:
    """Poll ``done`` (what it watches has no event to wait on), at most ``LISTEN_TIMEOUT_S``."""
    async with asyncio.timeout(LISTEN_TIMEOUT_S):
        while True:
            if done():
                return
            await asyncio.sleep(every_s)


async def bursts_heard(track: ClickTrack, heard: Recording, args: argparse.Namespace) -> Bursts:
    """Once the listener hears anything, schedule the bursts, wait for them, pair them up."""
    await wait_until(lambda: heard.seconds >= 0.3, 0.02)
    track.schedule(args.bursts, args.interval, LEAD_S)
    await asyncio.sleep(LEAD_S + args.bursts * args.interval)
    await wait_until(lambda: not track.pending, 0.05)
    await asyncio.sleep(PAIR_WINDOW * args.interval)  # the last burst's pairing window
    onsets = heard_onsets(heard, min_gap_s=args.interval / 2)
    return pair_up(track.spoken, onsets, PAIR_WINDOW * args.interval)


# --- the measurements ------------------------------------------------------------------------


@dataclass
class Room:
    url: str
    room_id: str
    host: LiveroomClient
    tokens: TokenService

    def token(self, user_id: str) -> str:
        return self.tokens.issue(Identity(user_id, user_id), 3600)


async def measure_baseline(args: argparse.Namespace, relay: Relay | None) -> Bursts:
    peers = Peers()
    try:
        track = ClickTrack(args.burst_ms)
        heard = await p2p(peers, track, relay)
        return await bursts_heard(track, heard, args)
    finally:
        await peers.close()


async def measure_liveroom(
    args: argparse.Namespace, room: Room, relay: Relay | None, listener_id: str
) -> tuple[Bursts, ClickTrack, Peers]:
    """The bursts through the server. Returns the speaker's track and connection still open
    (the join test goes on with them); the caller closes ``Peers``."""
    peers = Peers()
    track = ClickTrack(args.burst_ms)
    listener: LiveroomClient | None = None
    try:
        await liveroom_speaker(peers, room.host, room.room_id, track, relay)
        listener = await LiveroomClient.connect(room.url, room.token(listener_id))
        await listener.request("room:join", {"room_id": room.room_id})
        session = await open_audio(listener, room.room_id, timeout=LISTEN_TIMEOUT_S)
        try:
            bursts = await bursts_heard(track, session.recording, args)
        finally:
            await session.close()
            with contextlib.suppress(Exception):
                await listener.request("room:leave", {"room_id": room.room_id})
    except BaseException:
        await peers.close()
        raise
    finally:
        if listener is not None:
            await listener.close()
    return bursts, track, peers


@dataclass
class JoinTimes:
    """Monotonic times of one listener's way in (``join``/``joined`` are None peer-to-peer)."""

    offer: float
    answer: float
    connected: float
    first_frame: float
    first_signal: float
    join: float | None = None
    joined: float | None = None


def watch_connected(pc: RTCPeerConnection) -> list[float]:
    when: list[float] = []

    @pc.on("connectionstatechange")
    def _changed() -> None:
        if pc.connectionState == "connected" and not when:
            when.append(now())

    return when


async def first_signal(rec: Recording) -> tuple[float, float]:
    """Arrival of the first frame, and of the first frame with signal (peak ≥ ONSET_LEVEL)."""
    seen = 0
    async with asyncio.timeout(LISTEN_TIMEOUT_S):
        while True:
            chunks = len(rec.chunks)
            for i in range(seen, chunks):
                if int(np.abs(rec.chunks[i].astype(np.int32)).max(initial=0)) >= ONSET_LEVEL:
                    return rec.arrivals[0], rec.arrivals[i]
            seen = chunks
            await asyncio.sleep(0.005)


async def liveroom_join(room: Room, user_id: str) -> JoinTimes:
    client = await LiveroomClient.connect(room.url, room.token(user_id))
    peers = Peers()
    try:
        join = now()
        await client.request("room:join", {"room_id": room.room_id})
        joined = now()
        pc = peers.pc()
        pc.addTransceiver("audio", direction="recvonly")
        arrived = on_track(pc)
        connected = watch_connected(pc)
        await pc.setLocalDescription(await pc.createOffer())
        offer = now()
        ack = await client.request(
            "rtc:offer",
            {"room_id": room.room_id, "sdp": pc.localDescription.sdp, "type": "offer"},
            timeout=LISTEN_TIMEOUT_S,
        )
        answer = now()
        await pc.setRemoteDescription(RTCSessionDescription(ack["sdp"], ack["type"]))
        heard = Recording()
        peers.read(record(await asyncio.wait_for(arrived, LISTEN_TIMEOUT_S), heard))
        frame, signal_at = await first_signal(heard)
        return JoinTimes(
            offer, answer, connected[0] if connected else frame, frame, signal_at, join, joined
        )
    finally:
        await peers.close()
        with contextlib.suppress(Exception):
            await client.request("room:leave", {"room_id": room.room_id})
        await client.close()


async def p2p_join(burst_ms: float) -> JoinTimes:
    """A fresh peer-to-peer pair on a continuous tone: from the offer to the first signal."""
    peers = Peers()
    try:
        track = ClickTrack(burst_ms)
        track.tone = True
        speaker, listener = peers.pc(), peers.pc()
        speaker.addTrack(track)
        arrived = on_track(listener)
        connected = watch_connected(listener)
        await speaker.setLocalDescription(await speaker.createOffer())
        offer = now()
        await listener.setRemoteDescription(speaker.localDescription)
        for transceiver in listener.getTransceivers():
            transceiver.direction = "recvonly"
        await listener.setLocalDescription(await listener.createAnswer())
        answer = now()
        await speaker.setRemoteDescription(listener.localDescription)
        heard = Recording()
        peers.read(record(await asyncio.wait_for(arrived, LISTEN_TIMEOUT_S), heard))
        frame, signal_at = await first_signal(heard)
        return JoinTimes(offer, answer, connected[0] if connected else frame, frame, signal_at)
    finally:
        await peers.close()


def join_report(times: Sequence[JoinTimes]) -> dict[str, Any]:
    def ms(pairs: Sequence[tuple[float | None, float]]) -> list[float]:
        return [(b - a) * 1000 for a, b in pairs if a is not None]

    return {
        "join_to_first_audio_ms": quantiles(ms([(t.join, t.first_signal) for t in times])),
        "offer_to_first_audio_ms": quantiles(ms([(t.offer, t.first_signal) for t in times])),
        "steps_ms": {
            "join_ack": _p50(ms([(t.join, t.joined or t.offer) for t in times])),
            "gather_offer": _p50(ms([(t.joined, t.offer) for t in times])),
            "answer": _p50(ms([(t.offer, t.answer) for t in times])),
            "ice_dtls_connected": _p50(ms([(t.answer, t.connected) for t in times])),
            "first_frame": _p50(ms([(t.connected, t.first_frame) for t in times])),
            "first_signal": _p50(ms([(t.first_frame, t.first_signal) for t in times])),
        },
    }


def _p50(values: Sequence[float]) -> float | None:
    return round(float(np.median(values)), 1) if values else None


async def joins(
    count: int, attempt: Callable[[int], Awaitable[JoinTimes]]
) -> tuple[list[JoinTimes], list[str]]:
    done: list[JoinTimes] = []
    failures: list[str] = []
    for i in range(count):
        try:
            done.append(await attempt(i))
        except Exception as e:  # one slow join is a data point of its own, not the end
            failures.append(f"{type(e).__name__}: {e}")
    return done, failures


async def measure_pair(
    args: argparse.Namespace, room: Room, relay: Relay | None, label: str
) -> tuple[Bursts, Bursts, ClickTrack, Peers]:
    base = await measure_baseline(args, relay)
    ours, track, peers = await measure_liveroom(args, room, relay, f"lat_listener_{label}")
    return base, ours, track, peers


def section(base: Bursts, ours: Bursts) -> dict[str, Any]:
    b, o = base.as_json(), ours.as_json()
    added = o["p50"] - b["p50"] if o["p50"] is not None and b["p50"] is not None else None
    added_p95 = o["p95"] - b["p95"] if o["p95"] is not None and b["p95"] is not None else None
    return {
        "server_added_ms": round(added, 1) if added is not None else None,
        "server_added_p95_ms": round(added_p95, 1) if added_p95 is not None else None,
        "liveroom_ms": o,
        "baseline_ms": b,
        "pacing_late_ms": quantiles(base.pacing_late_ms + ours.pacing_late_ms),
    }


async def run(args: argparse.Namespace, procs: Processes) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secret = secrets.token_urlsafe(48)
    tokens = TokenService(secret, SystemClock(), 3600)
    out: dict[str, Any] = {
        "bursts": args.bursts,
        "interval_s": args.interval,
        "burst_ms": args.burst_ms,
        "joins": args.joins,
    }
    try:
        with tempfile.TemporaryDirectory(prefix="liveroom-latency-") as tmpdir:
            tmp = Path(tmpdir)
            env = server_env(port, tmp / "data", secret)
            env["LIVEROOM_RATE_LIMITS"] = RATE_LIMITS
            argv = [sys.executable, "-m", "liveroom", "serve"]
            async with server(procs, argv, env, url, tmp / "liveroom.log"):
                host_token = tokens.issue(
                    Identity("lat_host", "Latency host", grants=Grants(host=True)), 3600
                )
                host = await LiveroomClient.connect(url, host_token)
                try:
                    room_id = str(
                        (await host.request("room:create", {"title": "Latency"}))["room"]["id"]
                    )
                    await host.request("room:join", {"room_id": room_id})
                    await host.request("stage:unmute", {"room_id": room_id})
                    room = Room(url, room_id, host, tokens)
                    out |= await plain_and_joins(args, room)
                    out["jitter"] = await with_jitter(args, room)
                finally:
                    await host.close()
    finally:
        await asyncio.to_thread(procs.kill_all)
    base_joins, base_failures = await joins(args.joins, lambda i: p2p_join(args.burst_ms))
    out["baseline_offer_to_first_audio_ms"] = quantiles(
        [(t.first_signal - t.offer) * 1000 for t in base_joins]
    )
    out["detail"]["baseline_join_failures"] = base_failures[:3]
    out["goals"] = {
        "server_added_ms": GOAL_SERVER_ADDED_MS,
        "join_to_first_audio_ms": GOAL_JOIN_MS,
    }
    out["pinned"] = _two_cores()
    return out


async def plain_and_joins(args: argparse.Namespace, room: Room) -> dict[str, Any]:
    base, ours, track, peers = await measure_pair(args, room, None, "plain")
    try:
        track.tone = True  # the host now talks without pause: a joiner hears it at once
        done, failures = await joins(args.joins, lambda i: liveroom_join(room, f"lat_join_{i}"))
    finally:
        await peers.close()
    report = join_report(done)
    plain = section(base, ours)
    return {
        "server_added_ms": plain["server_added_ms"],
        "liveroom_ms": plain["liveroom_ms"],
        "baseline_ms": plain["baseline_ms"],
        "join_to_first_audio_ms": report["join_to_first_audio_ms"],
        "offer_to_first_audio_ms": report["offer_to_first_audio_ms"],
        "detail": {
            "server_added_p95_ms": plain["server_added_p95_ms"],
            "pacing_late_ms": plain["pacing_late_ms"],
            "join_steps_ms": report["steps_ms"],
            "join_failures": failures[:3],
        },
    }


async def with_jitter(args: argparse.Namespace, room: Room) -> dict[str, Any]:
    if args.jitter_ms <= 0 and args.delay_ms <= 0:
        return {"skipped": "--jitter-ms 0 --delay-ms 0"}
    method = (
        f"UDP relay on the speaker's leg (bench/jitter_relay.py), "
        f"{args.delay_ms:g} ± {args.jitter_ms:g} ms uniform, both directions"
    )
    async with Relay.running(args.delay_ms, args.jitter_ms) as relay:
        base, ours, _, peers = await measure_pair(args, room, relay, "jitter")
        await peers.close()
        relay_stats = await relay.stats()
    return {
        "delay_ms": args.delay_ms,
        "jitter_ms": args.jitter_ms,
        "method": method,
        **section(base, ours),
        "relay": relay_stats,
    }


# --- output ----------------------------------------------------------------------------------


def summary(out: dict[str, Any]) -> str:
    def q(d: dict[str, Any] | None) -> str:
        if not d or d.get("p50") is None:
            return f"{'—':>7} {'—':>7} {'—':>7} {'—':>7} {'—':>7}"
        heard = f"{d['n']}/{d['spoken']}" if "spoken" in d else str(d["n"])
        return f"{d['p50']:>7.1f} {d['p95']:>7.1f} {d['min']:>7.1f} {d['max']:>7.1f} {heard:>7}"

    def goal(value: float | None, limit: float) -> str:
        if value is None:
            return "—"
        return f"≤ {limit:g} ms: " + ("met" if value <= limit else "missed")

    jitter = out.get("jitter") or {}
    lines = [
        f"{out['bursts']} bursts of {out['burst_ms']:g} ms of 1 kHz every {out['interval_s']:g} s; "
        f"server on core {SERVER_CPU}, load on core {LOAD_CPU}"
        + ("" if out["pinned"] else " (NOT pinned: fewer than two cores)"),
        f"{'mouth → ear, ms':40} {'p50':>7} {'p95':>7} {'min':>7} {'max':>7} {'heard':>7}",
        f"{'baseline (peer to peer)':40} {q(out['baseline_ms'])}",
        f"{'liveroom (speaker → server → listener)':40} {q(out['liveroom_ms'])}",
        f"{'server added (p50 difference)':40} {_num(out['server_added_ms']):>7}"
        f"   goal {goal(out['server_added_ms'], GOAL_SERVER_ADDED_MS)}",
    ]
    if "skipped" in jitter:
        lines.append(f"jitter: skipped ({jitter['skipped']})")
    else:
        tag = f"+ {jitter['delay_ms']:g} ± {jitter['jitter_ms']:g} ms on the speaker's leg"
        lines += [
            f"{'baseline ' + tag:40.40} {q(jitter['baseline_ms'])}",
            f"{'liveroom ' + tag:40.40} {q(jitter['liveroom_ms'])}",
            f"{'server added with jitter':40} {_num(jitter['server_added_ms']):>7}",
        ]
    lines += [
        f"{'join → first audio':40} {q(out['join_to_first_audio_ms'])}"
        f"   goal {goal(out['join_to_first_audio_ms']['p50'], GOAL_JOIN_MS)}",
        f"{'rtc:offer → first audio':40} {q(out['offer_to_first_audio_ms'])}",
        f"{'baseline offer → first audio (p2p)':40} {q(out['baseline_offer_to_first_audio_ms'])}",
        "join steps (p50 ms): "
        + ", ".join(f"{k} {_num(v)}" for k, v in out["detail"]["join_steps_ms"].items()),
    ]
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--bursts", type=int, default=20, help="bursts per measurement")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between bursts")
    parser.add_argument("--burst-ms", type=float, default=20.0, help="length of a burst")
    parser.add_argument("--joins", type=int, default=10, help="listeners joining, one by one")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="relay's mean delay")
    parser.add_argument("--jitter-ms", type=float, default=10.0, help="± around it (0: none)")
    parser.add_argument("--no-jitter", action="store_true", help="skip the jitter measurements")
    parser.add_argument("--json", action="store_true", help="print only one JSON line")
    parser.add_argument("--timeout", type=float, default=0, help="overall limit, s (default: auto)")
    args = parser.parse_args(argv)
    if args.bursts < 1 or args.joins < 1 or args.interval < 0.3 or args.burst_ms <= 0:
        parser.error("--bursts and --joins ≥ 1, --interval ≥ 0.3, --burst-ms > 0")
    if args.burst_ms > args.interval * 500:
        parser.error("--burst-ms must be under half the interval")
    if args.jitter_ms < 0 or args.delay_ms < 0:
        parser.error("--delay-ms and --jitter-ms must be ≥ 0")
    if args.no_jitter:
        args.jitter_ms = args.delay_ms = 0.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pin(LOAD_CPU)
    use_loopback_candidates(True)
    per_run = LEAD_S + (args.bursts + 1) * args.interval + 15
    runs = 2 if args.no_jitter else 4
    timeout = args.timeout or 2 * (60 + runs * per_run + 2 * args.joins * 5)

    return drive(
        "latency.py", lambda procs: run(args, procs), timeout, None if args.json else summary
    )


if __name__ == "__main__":
    raise SystemExit(main())
