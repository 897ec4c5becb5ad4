"""One room's media: its peer connections, its speakers' decoded audio and its mixer clock.

Every 20 ms the mixer takes one frame from each audible speaker's small buffer (none → silence;
it never waits), mixes, encodes the program mix **once** into the program feed that every
listener's sender reads, and encodes one mix-minus per stage member (≤ 13). In DJ mode the
room's deck adds the playlist's music, decoded ahead by its own thread and ducked while someone
speaks. Everything this object starts — peer connections, the inbound readers, the decks, the
clock — it also stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import av
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.clock import current_ntp_time
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.sdp import SessionDescription

from liveroom.errors import Gone, Invalid
from liveroom.media import wire
from liveroom.media.counters import MixerStats, RtpCounts
from liveroom.media.deck import Deck, MusicCue
from liveroom.media.ducking import Ducker
from liveroom.media.feed import FeedTrack, PacketFeed
from liveroom.media.hls import HlsPackager
from liveroom.media.ice import rtc_configuration
from liveroom.media.inbound import SpeakerBuffer
from liveroom.media.listeners import ListenerFanout, Tick
from liveroom.media.mixer import FRAME_MS, FRAME_SAMPLES, Mix, Pcm, dbov, mix
from liveroom.media.opus import OpusEncoder, to_pcm

if TYPE_CHECKING:
    from liveroom.media.opus import EncodedPacket

logger = logging.getLogger(__name__)

TICK_S = FRAME_MS / 1000
LevelsSink = Callable[[str, Mapping[str, float]], None]


@dataclass
class Peer:
    """One user's peer connection in this room, and what it publishes and receives."""

    user_id: str
    pc: RTCPeerConnection
    publishing: bool
    inbound: SpeakerBuffer = field(default_factory=SpeakerBuffer)
    reader: asyncio.Task[None] | None = None


@dataclass
class _Turns:
    """One user's offers, answered in turn."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class RoomMedia:
    def __init__(
        self,
        room_id: str,
        ice_urls: list[str],
        on_levels: LevelsSink,
        now_ms: Callable[[], int],
        hls: HlsPackager | None = None,
    ) -> None:
        self.room_id = room_id
        self.hls = hls
        """The program mix as HLS (and the room's recording), fed every tick."""
        self._ice_urls = ice_urls
        self._on_levels = on_levels
        self._now_ms = now_ms
        self.peers: dict[str, Peer] = {}
        self.audible: frozenset[str] = frozenset()
        self.stats = MixerStats()
        self.rtp_closed = RtpCounts()
        """RTP counts of this room's connections that have closed."""
        self.program = PacketFeed()
        """The program mix for connections that carried a speaker's voice before."""
        self.listeners = ListenerFanout()
        """The program mix for listeners' connections, sent from the mixer's tick."""
        self._program_encoder = OpusEncoder()
        self._minus: dict[str, tuple[PacketFeed, OpusEncoder]] = {}
        self._offering: dict[str, _Turns] = {}
        self._epochs: dict[str, int] = {}  # bumped when a user is dropped from outside
        self.closed = False
        self._clock: asyncio.Task[None] | None = None
        self.deck: Deck | None = None
        """The music playing (or cued to start at ``_deck_at``), DJ mode only."""
        self._deck_at = 0
        self._cue: MusicCue | None = None
        self._retired: list[Deck] = []  # stopped, their threads ending
        self._ducker = Ducker()
        self._levels: Mapping[str, float] = {}  # the speakers' last tick, for ducking

    # --- the boundary -----------------------------------------------------------------------

    def start(self) -> None:
        self._clock = asyncio.create_task(self._run(), name=f"mixer-{self.room_id}")

    async def offer(self, user_id: str, sdp: str, kind: str, may_publish: bool) -> tuple[str, str]:
        """Answer ``user_id``'s offer. A stage member's ``sendrecv`` offer publishes and receives
        their mix-minus; anyone else receives the program mix, and any audio they send is never
        read, let alone mixed. A new offer replaces the user's previous connection; one user's
        offers are answered one at a time, so no connection is ever left without an owner."""
        if kind != "offer":
            raise Invalid("type must be offer")
        offered = _offered_audio_direction(sdp)
        turn = self._offering.setdefault(user_id, _Turns())
        turn.users += 1
        try:
            async with turn.lock:
                return await self._answer(user_id, sdp, offered, may_publish)
        finally:
            turn.users -= 1
            if not turn.users:  # the last one out tidies up: the map stays bounded
                self._offering.pop(user_id, None)

    async def _answer(
        self, user_id: str, sdp: str, offered: str, may_publish: bool
    ) -> tuple[str, str]:
        epoch = self._epochs.get(user_id, 0)
        await self._close_peer(user_id)
        if self.closed:
            raise Gone("the room has ended")
        pc = RTCPeerConnection(rtc_configuration(self._ice_urls))
        peer = Peer(user_id, pc, publishing=False)
        self.peers[user_id] = peer
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            transceivers = pc.getTransceivers()
            transceiver = next(t for t in transceivers if t.kind == "audio")
            for other in transceivers:
                if other is not transceiver:
                    other.direction = "inactive"  # never a receiver nobody reads
            opus = [
                c
                for c in RTCRtpSender.getCapabilities("audio").codecs
                if c.mimeType.lower() == "audio/opus"
            ]
            transceiver.setCodecPreferences(opus)
            peer.publishing = may_publish and offered == "sendrecv"
            if peer.publishing:
                transceiver.direction = "sendrecv"
                transceiver.sender.replaceTrack(FeedTrack(self._minus_feed(user_id)))
                wire.decode_on_arrival(transceiver.receiver)  # jitter: SpeakerBuffer's
                peer.reader = asyncio.create_task(
                    self._read(peer, transceiver.receiver.track), name=f"inbound-{user_id}"
                )
            else:
                # Listeners only receive: what a listener offers to send is refused in the SDP.
                transceiver.direction = "sendonly"
                self.listeners.add(user_id, transceiver)
            await pc.setLocalDescription(await pc.createAnswer())
        except ValueError as e:  # aiortc's word for an offer it cannot use (codecs, SDP)
            await self._discard(peer)
            if self.closed or self._epochs.get(user_id, 0) != epoch:
                raise Gone("no longer in the room") from None
            raise Invalid(f"the offer cannot be answered: {e}") from None
        except Exception:
            await self._discard(peer)
            if self.closed or self._epochs.get(user_id, 0) != epoch:
                # The user left (or the room ended) mid-answer and their connection was
                # closed under it: aiortc's complaint about a closed connection means "gone".
                raise Gone("no longer in the room") from None
            raise
        except BaseException:
            await self._discard(peer)
            raise
        if self.closed or self._epochs.get(user_id, 0) != epoch:
            # The room ended, or the user left, while this offer was being answered.
            await self._discard(peer)
            raise Gone("no longer in the room")
        return pc.localDescription.sdp, pc.localDescription.type

    def play(self, cue: MusicCue | None) -> None:
        """The room's music from the next tick on (``None``: none). The same cue again changes
        nothing; a cue whose start has passed starts now, from where it would be by now. Never
        blocks: the old deck is only told to stop."""
        if cue == self._cue or self.closed:
            return
        self._cue = cue
        self._retire_deck()
        if cue is None:
            return
        now = self._now_ms()
        position = cue.position_s + max(0, now - cue.at) / 1000
        deck = Deck(cue.path)
        deck.cue(position)
        self.deck, self._deck_at = deck, max(cue.at, now)

    def _retire_deck(self) -> None:
        deck, self.deck = self.deck, None
        if deck is not None:
            deck.stop()
            self._retired.append(deck)
        self._retired = [d for d in self._retired if d.decoding]

    def set_audible(self, user_ids: frozenset[str]) -> None:
        """Who is in the mix from the next tick: unmuted stage members."""
        self.audible = user_ids

    async def drop(self, user_id: str) -> None:
        """The user left (or was removed): close their connection, and any offer of theirs
        still being answered is refused when it completes."""
        if user_id in self._offering:
            self._epochs[user_id] = self._epochs.get(user_id, 0) + 1
        else:
            self._epochs.pop(user_id, None)
        await self._close_peer(user_id)

    async def unpublish(self, user_id: str) -> None:
        """The user lost the microphone: out of the stage from the next tick (nothing decoded
        or encoded for them); their connection carries the program mix until they offer again."""
        peer = self.peers.get(user_id)
        if peer is None or not peer.publishing:
            return
        peer.publishing = False  # before any await: the next tick already leaves them out
        peer.inbound.clear()
        self._close_minus(user_id)
        for transceiver in peer.pc.getTransceivers():
            if transceiver.kind == "audio":
                transceiver.sender.replaceTrack(FeedTrack(self.program))
        await _stop_reader(peer)

    def _close_minus(self, user_id: str) -> None:
        minus = self._minus.pop(user_id, None)
        if minus is not None:
            minus[0].close()

    async def _discard(self, peer: Peer) -> None:
        """Close ``peer``: the user's connection, or one a leave already took out of the room
        while it was being answered (its reader must not outlive it)."""
        if self.peers.get(peer.user_id) is peer:
            await self._close_peer(peer.user_id)
        else:
            await _stop_reader(peer)
            await peer.pc.close()

    async def _close_peer(self, user_id: str) -> None:
        peer = self.peers.pop(user_id, None)
        self._close_minus(user_id)
        self.listeners.remove(user_id)
        if peer is None:
            return
        # At once, with no wait in between: the room's totals never lose this peer's counts.
        self.rtp_closed.add(await peer_rtp(peer.pc))
        await _stop_reader(peer)
        await peer.pc.close()

    async def rtp_counts(self) -> RtpCounts:
        """RTP packets of every connection this room has had, open or closed."""
        counts = RtpCounts()
        counts.add(self.rtp_closed)
        for pc in [peer.pc for peer in self.peers.values()]:
            counts.add(await peer_rtp(pc))
        return counts

    async def close(self, *, ended: bool = True) -> None:
        """Stop everything. ``ended``: the room is over, so its HLS ends and its recording
        becomes the replay; otherwise (the server stopping) a restart carries on from it."""
        self.closed = True
        if self._clock is not None:
            self._clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock
            self._clock = None
        for user_id in list(self.peers):
            await self.drop(user_id)
        self.program.close()
        self._retire_deck()
        for deck in self._retired:
            await asyncio.to_thread(deck.close)
        self._retired.clear()
        if self.hls is not None:
            if ended:
                self.hls.finish()
            await asyncio.to_thread(self.hls.close)

    # --- inside -----------------------------------------------------------------------------

    def _minus_feed(self, user_id: str) -> PacketFeed:
        if user_id not in self._minus:
            self._minus[user_id] = (PacketFeed(), OpusEncoder())
        return self._minus[user_id][0]

    async def _read(self, peer: Peer, track: MediaStreamTrack) -> None:
        """Decode one speaker's track into their bounded buffer (oldest dropped when full)."""
        try:
            while True:
                frame = await track.recv()
                if isinstance(frame, av.AudioFrame):
                    pcm = to_pcm(frame)
                    for start in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
                        peer.inbound.push(pcm[start : start + FRAME_SAMPLES])
        except MediaStreamError:
            return

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        tick = 0
        while True:
            began = time.perf_counter()
            try:
                self._tick(tick)
            except Exception:
                logger.exception(
                    "mixer tick failed in room %s", self.room_id, extra={"room_id": self.room_id}
                )
            self.stats.tick_times.observe(time.perf_counter() - began)
            tick += 1
            delay = started + tick * TICK_S - loop.time()
            if delay < -TICK_S:
                # Behind by more than a tick: skip the lost ticks rather than burst to catch
                # up. RTP time jumps with them, so receivers conceal the gap instead of keeping
                # the delay.
                lost = int(-delay // TICK_S)
                self.stats.late_ticks += lost
                tick += lost
                self._skip_music(lost)
                if self.hls is not None:
                    self.hls.skip(lost)
                delay = started + tick * TICK_S - loop.time()
            await asyncio.sleep(max(0.0, delay))

    def _skip_music(self, ticks: int) -> None:
        """The music keeps time with the room's clock: lost ticks skip its frames too, or it
        would fall behind ``playlist:state`` and be cut short at the item's end."""
        if self.deck is not None and self._now_ms() >= self._deck_at:
            self.deck.skip(ticks)

    def _tick(self, tick: int) -> Mix:
        frames = {}
        for user_id, peer in self.peers.items():
            frame = peer.inbound.take() if peer.publishing else None  # taken, heard or not
            if frame is not None and user_id in self.audible:
                frames[user_id] = frame
        stage = [u for u, p in self.peers.items() if p.publishing]
        music = None
        if self.deck is not None and self._now_ms() >= self._deck_at:
            decoded = self.deck.next_frame()
            if decoded is not None:  # ducked by how loud the speakers were a tick ago
                music = self._ducker.apply(decoded, self._levels)
        result = mix(frames, self.audible, stage, music)
        self._levels = result.levels
        pts = tick * FRAME_SAMPLES
        if self.hls is not None:
            self.hls.push(result.program)
        packet = self._program_encoder.encode(result.program, pts)
        if packet is not None:
            self.program.publish(packet)
            if len(self.listeners):
                self._send_to_listeners(packet, result.program, pts)
        for user_id in stage:
            feed, encoder = self._minus[user_id]
            minus_packet = encoder.encode(result.minus[user_id], pts)
            if minus_packet is not None:
                feed.publish(minus_packet)
        self.stats.ticks += 1
        self.stats.encodes += 1 + len(stage)
        if result.levels:
            self._on_levels(self.room_id, result.levels)
        return result

    def _send_to_listeners(self, packet: EncodedPacket, program: Pcm, pts: int) -> None:
        """The tick's one Opus packet to every listener, its CPU time counted (thread CPU: a
        descheduled loop is not the fan-out's cost)."""
        ntp_time = current_ntp_time()
        began = time.thread_time()
        sent = self.listeners.send(
            Tick(
                payload=bytes(packet),
                pts=pts,
                abs_send_time=(ntp_time >> 14) & 0xFFFFFF,
                ntp_time=ntp_time,
                audio_level=max(-127, min(0, round(dbov(program)))),
            )
        )
        self.stats.fanout_s += time.thread_time() - began
        self.stats.fanout_packets += sent


async def peer_rtp(pc: RTCPeerConnection) -> RtpCounts:
    """What one connection has sent and received so far (aiortc's ``getStats`` of its senders
    and receivers; they compute it without waiting on anything)."""
    counts = RtpCounts()
    for transceiver in pc.getTransceivers():
        counts.add(await _transceiver_rtp(transceiver))
    return counts


async def _transceiver_rtp(transceiver: RTCRtpTransceiver) -> RtpCounts:
    counts = RtpCounts()
    try:
        sent = await transceiver.sender.getStats()
        received = await transceiver.receiver.getStats()
    except Exception:  # not negotiated yet, or already torn down: nothing to count
        return counts
    for stats in sent.values():
        if stats.type == "outbound-rtp":
            counts.sent += stats.packetsSent
        elif stats.type == "remote-inbound-rtp":
            counts.sent_lost += max(0, stats.packetsLost)
    for stats in received.values():
        if stats.type == "inbound-rtp":
            counts.received += stats.packetsReceived
            counts.received_lost += max(0, stats.packetsLost)
    return counts


async def _stop_reader(peer: Peer) -> None:
    reader, peer.reader = peer.reader, None
    if reader is not None:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


def _offered_audio_direction(sdp: str) -> str:
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception:
        raise Invalid("the offer is not valid SDP") from None
    audio = [m for m in parsed.media if m.kind == "audio"]
    if not audio:
        raise Invalid("the offer has no audio")
    if not any(c.mimeType.lower() == "audio/opus" for c in audio[0].rtp.codecs):
        raise Invalid("the offer's audio must offer Opus")
    direction = audio[0].direction or "sendrecv"
    if direction not in {"sendrecv", "recvonly"}:
        raise Invalid("audio must be offered sendrecv (stage) or recvonly (listening)")
    return direction
