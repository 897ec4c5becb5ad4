"""A room's program mix as HLS: one AAC encoder per room, segments on disk, the live playlist
and, when the room ends, its replay.

The mixer hands over one 20 ms frame per tick with :meth:`HlsPackager.push`, which only puts it
on a bounded queue: encoding and every disk write happen on the packager's own thread, so a
slow or full disk can cost listeners their HLS, never the mixer a late tick (the
pattern of :mod:`liveroom.media.deck`, the other way round). One encoder serves every HLS
listener: they fetch the same files, through nginx or a CDN.

**Container: MPEG-TS.** hls.js and Safari both play AAC in MPEG-TS, as does every HLS player
since the format began. A TS segment stands alone (its own PAT/PMT and ADTS frames), so there
is no init segment or ``#EXT-X-MAP`` to keep in step, any segment decodes by itself (a replay
can start anywhere, a test can check one file), and the playlist stays at version 3. In PyAV it
is a small muxer per segment fed the packets of the room's one continuous encoder; the muxer
adds only its constant start offset, so timestamps run on across files without a jump. fMP4
would mean cutting one fragmenting MP4 muxer's output into an init segment and fragments at
the right bytes, which PyAV gives no clean hold on. The price is framing: at 64 kb/s ≈ 30 % on
top of the AAC (≈ 10.2 KB per 0.98 s segment, ≈ 7.8 KB of it audio; fMP4 would add well under
10 %). TS timestamps are 33 bits at 90 kHz: they wrap after 26.5 hours, which hls.js handles;
an eight-hour room is far from it.

**Time is counted in samples, never read from a clock**: a segment is whole AAC frames (1024
samples), as many as fit in the target (46 for 1 s: 0.981 s), so none is ever longer than
``#EXT-X-TARGETDURATION`` promises. Frames the queue had to drop (a stalled disk) come back as
the same length of silence, so the media timeline keeps pace with the mixer's ticks: the live
edge stays at now and the replay lasts as long as the room. Segments the disk refused are
lost; the next one written is marked ``#EXT-X-DISCONTINUITY`` so players re-anchor instead of
stalling on the hole.

**Recording**: with recording on, every segment stays on disk while the room is live (the live
playlist lists only the window) and :meth:`HlsPackager.finish` lists them all in
``replay.m3u8``. With recording off only the window stays, plus as many segments again for
players still fetching what just left it (RFC 8216 §6.2.2), and there is no replay.

Write errors are logged once per episode, counted in :class:`HlsStats` and never raised; the
next segment tries again, so HLS resumes by itself once the disk has room.
"""

from __future__ import annotations

import contextlib
import fractions
import io
import logging
import os
import queue
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

from liveroom.media.hls_playlist import Segment, live_playlist, replay_playlist, target_duration
from liveroom.media.mixer import FRAME_SAMPLES, SAMPLE_RATE, Pcm

if TYPE_CHECKING:
    from av.audio.stream import AudioStream
    from av.stream import Stream

    AacPacket = av.Packet[Stream]  # the stubs' generic; av.Packet at run time

logger = logging.getLogger(__name__)

LIVE_PLAYLIST = "live.m3u8"
REPLAY_PLAYLIST = "replay.m3u8"
RECORDED_INDEX = "recorded.idx"
"""One line per recorded segment (``sequence duration discontinuity``): what a restarted room's
replay starts from. Never served (only the playlists and segments are)."""
SEQUENCE_FLOOR = "sequence.floor"
"""Several nodes: the least media sequence number the room's next packager here starts at,
written by a node taking the room over (:func:`number_from`). Never served."""
SEGMENT_NAME = re.compile(r"seg-(\d+)\.ts")
"""What a segment is called; nothing else in a room's directory is a segment (temporary files
start with a dot)."""

AAC_FRAME = 1024  # samples per AAC-LC frame
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
DEFAULT_SEGMENT_S = 1.0
DEFAULT_WINDOW = 6
DEFAULT_BITRATE = 64_000  # AAC-LC, mono: speech and the room's music
QUEUE_FRAMES = 250
"""5 s of 20 ms frames (≈ 480 KB) waiting for the encoder: a disk stalled longer costs dropped
frames, filled with silence, never a blocked mixer."""

# The TS muxer fills a PES packet with audio for at most half of ``max_delay``: at its default
# of 0 every AAC frame gets a PES of its own and a segment doubles in size. With 2 s, PES fill
# to the muxer's usual 2930 bytes (≈ 0.36 s at 64 kb/s, about what the ffmpeg command line
# makes). The muxer shifts every timestamp by the same constant for it: segments still join up.
_TS_OPTIONS = {"max_delay": "2000000"}


def segment_name(sequence: int) -> str:
    return f"seg-{sequence:06d}.ts"


def number_from(directory: Path, sequence: int) -> None:
    """The room's next packager numbers its segments from ``sequence`` at least: a room taken
    over from another node, whose segments are not in this node's ``directory``, never goes
    back to numbers a player or a cache saw from there. Blocking (a small write)."""
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomically(directory / SEQUENCE_FLOOR, f"{sequence}\n".encode())


@dataclass
class HlsStats:
    """How a room's HLS is doing, for ``/healthz`` and the logs. Written by the packager's
    thread (``dropped_frames`` by :meth:`HlsPackager.push`), read by anyone."""

    segments: int = 0
    """Segments written."""
    write_errors: int = 0
    """Segment or playlist writes that failed (and anything else that cost a segment)."""
    dropped_frames: int = 0
    """Frames :meth:`HlsPackager.push` could not queue; each became 20 ms of silence."""
    healthy: bool = True
    """The last write worked (or none has been tried yet)."""
    audio_s: float = 0.0
    """Seconds of audio encoded, silence fills included."""
    worker_cpu_s: float = 0.0
    """CPU time the packager's thread has used: encoding, muxing and writing."""


@dataclass(frozen=True, slots=True)
class _Audio:
    pcm: Pcm
    silence_before: int
    """Frames dropped just before this one, to be made up with silence."""


@dataclass(frozen=True, slots=True)
class _Drain:
    done: threading.Event


class _Finish:
    pass


class _Stop:
    pass


_Item = _Audio | _Drain | _Finish | _Stop


class HlsPackager:
    """One room's HLS: its encoder thread, its segments, its playlists in ``directory``.

    ``segment_s``: the target segment duration (segments are the whole AAC frames that fit).
    ``window``: segments the live playlist lists. ``recording``: keep every segment and write
    the replay at :meth:`finish`. ``queue_frames``: how many frames may wait for the encoder.
    The directory is created when the first segment is written, so a missing or unwritable
    media dir shows up in :attr:`stats`, not as an error here.
    """

    def __init__(
        self,
        room_id: str,
        directory: Path,
        *,
        segment_s: float = DEFAULT_SEGMENT_S,
        window: int = DEFAULT_WINDOW,
        recording: bool = True,
        bitrate: int = DEFAULT_BITRATE,
        queue_frames: int = QUEUE_FRAMES,
    ) -> None:
        if segment_s * SAMPLE_RATE < AAC_FRAME:
            raise ValueError(f"segment_s must hold one AAC frame (≥ {AAC_FRAME / SAMPLE_RATE}s)")
        if window < 1 or queue_frames < 1:
            raise ValueError("window and queue_frames must be positive")
        self.room_id = room_id
        self._log = logging.LoggerAdapter(logger, {"room_id": room_id})  # its own thread's lines
        self.directory = directory
        self.recording = recording
        self.stats = HlsStats()
        self._window = window
        self._bitrate = bitrate
        self._frames_per_segment = int(segment_s * SAMPLE_RATE) // AAC_FRAME
        self.target_duration = target_duration(self._frames_per_segment * AAC_FRAME / SAMPLE_RATE)
        """``#EXT-X-TARGETDURATION``, in whole seconds: fixed for the room's life."""
        self._queue_frames = queue_frames
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._accepting = True
        self._gap = 0  # frames dropped since the last one queued (push's side only)

        # The worker's side: nothing below is touched by push().
        self._encoder: _AacEncoder | None = None
        self._packets: list[AacPacket] = []  # the segment being filled
        self._sequence = 0
        self._discontinuities = 0
        self._lost = False  # segments were lost since the last one written
        self._behind = False  # silence is filling in for dropped frames (logged once)
        self._filled = False  # ... in the segment being filled
        self._finished = False
        self._listed: deque[Segment] = deque(maxlen=window)
        self._recorded: list[Segment] = []
        self._on_disk: deque[str] = deque()  # recording off: segments still to delete
        self._worker = threading.Thread(target=self._run, name=f"hls-{room_id}", daemon=True)
        self._worker.start()

    # --- the mixer's side: never blocks, never raises ---------------------------------------

    def push(self, pcm: Pcm) -> None:
        """Queue one frame of the program mix. O(1): with the queue full (the disk is behind),
        the frame is dropped and counted, and becomes silence of the same length."""
        if not self._accepting:
            return
        if self._queue.qsize() >= self._queue_frames:
            self._gap += 1
            self.stats.dropped_frames += 1
            return
        self._queue.put_nowait(_Audio(pcm.copy(), self._gap))
        self._gap = 0

    def skip(self, frames: int) -> None:
        """The mixer lost ``frames`` ticks (a stalled loop): they become silence, so the media
        timeline keeps pace with the room's clock."""
        if self._accepting and frames > 0:
            self._gap += frames

    def finish(self) -> None:
        """The room has ended: once what is queued is encoded, write the last segment, end the
        live playlist and, when recording, write the replay. Returns at once."""
        if not self._accepting:
            return
        self._accepting = False
        if self._gap:
            self._queue.put_nowait(_Audio(np.zeros(0, np.int16), self._gap))
            self._gap = 0
        self._queue.put_nowait(_Finish())

    # --- blocking: call from a thread (or a test), not the event loop -----------------------

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far (a :meth:`finish` included) is written or given
        up on; ``False`` if that took longer than ``timeout``."""
        if not self._worker.is_alive():
            return True
        done = threading.Event()
        self._queue.put_nowait(_Drain(done))
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread once it has done what is queued. Without :meth:`finish` the segment
        being filled is dropped and the live playlist left open: a room that goes on after a
        restart carries on from the segments on disk."""
        self._accepting = False
        if self._worker.is_alive():
            self._queue.put_nowait(_Stop())
            self._worker.join(timeout)
            if self._worker.is_alive():
                self._log.warning(
                    "HLS of room %s: the writer did not stop in %ss", self.room_id, timeout
                )

    # --- the packager's thread --------------------------------------------------------------

    def _run(self) -> None:
        started = time.thread_time()
        self._sequence = self._first_sequence()
        try:
            self._encoder = _AacEncoder(self._bitrate)
        except Exception:
            self._log.exception("HLS of room %s: no AAC encoder, no HLS", self.room_id)
            self.stats.healthy = False
        while True:
            item = self._queue.get()
            try:
                if isinstance(item, _Stop):
                    break
                if isinstance(item, _Drain):
                    item.done.set()
                elif isinstance(item, _Finish):
                    self._finish()
                else:
                    self._take(item)
            except Exception as e:  # keep serving: the next segment may well work
                self._failed("a segment", e, unexpected=True)
            self.stats.worker_cpu_s = time.thread_time() - started
        if self._encoder is not None:
            self._encoder.close()

    def _first_sequence(self) -> int:
        """Carry on numbering after segments already in the directory (a room that restarted),
        or from the floor a node taking the room over set (:func:`number_from`), whichever is
        higher, so no name ever means two files to a cache; mark the seam as a discontinuity."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return 0
        floor = self._sequence_floor()
        self._lost = floor > 0  # taken over: the seam with the other node's segments
        numbers = sorted(int(m.group(1)) for name in names if (m := SEGMENT_NAME.fullmatch(name)))
        if not numbers:
            return floor
        if self.recording:  # the replay goes on from what was recorded before
            self._recorded = self._read_index(set(numbers))
            self._discontinuities = sum(s.discontinuity for s in self._recorded)
        else:  # they are past any window now: delete them in turn
            self._on_disk.extend(segment_name(n) for n in numbers)
        self._lost = True
        return max(numbers[-1] + 1, floor)

    def _sequence_floor(self) -> int:
        try:
            return max(0, int((self.directory / SEQUENCE_FLOOR).read_text().strip() or 0))
        except (OSError, ValueError):
            return 0

    def _read_index(self, on_disk: set[int]) -> list[Segment]:
        """The recorded segments still on disk, from the index (a torn last line is skipped)."""
        recorded: list[Segment] = []
        try:
            lines = (self.directory / RECORDED_INDEX).read_text().splitlines()
        except OSError:
            return recorded
        for line in lines:
            parts = line.split()
            try:
                sequence, duration, discontinuity = int(parts[0]), float(parts[1]), parts[2] == "1"
            except (IndexError, ValueError):
                continue
            if sequence in on_disk:
                count = sum(s.discontinuity for s in recorded) + discontinuity
                segment = Segment(sequence, segment_name(sequence), duration, discontinuity, count)
                recorded.append(segment)
        return recorded

    def _record(self, segment: Segment) -> None:
        """Keep ``segment`` for the replay; one not following the last recorded (recording was
        off in between) is a discontinuity there."""
        last = self._recorded[-1] if self._recorded else None
        if last is not None and segment.sequence != last.sequence + 1 and not segment.discontinuity:
            segment = replace(segment, discontinuity=True)
        self._recorded.append(segment)
        line = f"{segment.sequence} {segment.duration_s:.6f} {int(segment.discontinuity)}\n"
        try:
            with (self.directory / RECORDED_INDEX).open("a") as index:
                index.write(line)
        except OSError as e:
            self._failed("the recording's index", e)

    def _take(self, audio: _Audio) -> None:
        encoder = self._encoder
        if encoder is None or self._finished:
            return
        silence = audio.silence_before * FRAME_SAMPLES
        if silence:
            self._filled = True
            if not self._behind:
                self._behind = True
                self._log.warning(
                    "HLS of room %s: frames lost (a late mixer or a slow disk) become silence",
                    self.room_id,
                )
        while silence:
            chunk = min(silence, SAMPLE_RATE)
            self._add(encoder.encode(np.zeros(chunk, np.int16)))
            silence -= chunk
        self._add(encoder.encode(audio.pcm))
        self.stats.audio_s = encoder.samples / SAMPLE_RATE

    def _add(self, packets: list[AacPacket]) -> None:
        for packet in packets:
            self._packets.append(packet)
            if len(self._packets) == self._frames_per_segment:
                self._cut()

    def _cut(self) -> None:
        packets, self._packets = self._packets, []
        assert self._encoder is not None
        self._behind, self._filled = self._filled, False  # a whole segment unfilled: caught up
        lost_before, self._lost = self._lost, True  # until this one is on disk, whatever fails
        samples = sum(packet.duration or AAC_FRAME for packet in packets)
        data = self._encoder.mux(packets)
        sequence = self._sequence
        name = segment_name(sequence)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_atomically(self.directory / name, data)
        except OSError as e:
            self._failed(f"segment {name}", e)
            return
        self._lost = False
        discontinuity = lost_before and sequence > 0
        self._sequence += 1
        self._discontinuities += discontinuity
        segment = Segment(
            sequence, name, samples / SAMPLE_RATE, discontinuity, self._discontinuities
        )
        self.stats.segments += 1
        self._listed.append(segment)
        if self.recording:
            self._record(segment)
        else:
            self._on_disk.append(name)
        if self._write_playlist(LIVE_PLAYLIST, live_playlist(self._listed, self.target_duration)):
            self._recovered()
        if not self.recording:
            self._delete_expired()

    def _delete_expired(self) -> None:
        keep = 2 * self._window + 1  # the window, and as long again for players still on it
        while len(self._on_disk) > keep:
            try:
                (self.directory / self._on_disk[0]).unlink(missing_ok=True)
            except OSError as e:
                self._failed(f"deleting {self._on_disk[0]}", e)
                return  # try again after the next segment
            self._on_disk.popleft()

    def _finish(self) -> None:
        if self._finished or self._encoder is None:
            return
        self._finished = True
        self._add(self._encoder.flush())
        if self._packets:
            self._cut()
        if self._listed:
            ended = live_playlist(self._listed, self.target_duration, ended=True)
            self._write_playlist(LIVE_PLAYLIST, ended)
        if self.recording and self._recorded:
            replay = replay_playlist(self._recorded, self.target_duration)
            if self._write_playlist(REPLAY_PLAYLIST, replay, durable=True):
                self._log.info(
                    "HLS of room %s: replay of %d segments, %.1f s",
                    self.room_id,
                    len(self._recorded),
                    sum(s.duration_s for s in self._recorded),
                )

    def _write_playlist(self, name: str, text: str, *, durable: bool = False) -> bool:
        try:
            _write_atomically(self.directory / name, text.encode(), durable=durable)
        except OSError as e:
            self._failed(name, e)
            return False
        return True

    def _failed(self, what: str, error: Exception, *, unexpected: bool = False) -> None:
        self.stats.write_errors += 1
        if not self.stats.healthy:
            return  # one line per episode, not one per segment
        self.stats.healthy = False
        self._log.warning(
            "HLS of room %s cannot write %s (%s); the live audio goes on, HLS resumes when it can",
            self.room_id,
            what,
            error,
            exc_info=error if unexpected else None,
        )

    def _recovered(self) -> None:
        if not self.stats.healthy:
            self._log.info("HLS of room %s is writing again", self.room_id)
        self.stats.healthy = True


class _AacEncoder:
    """The room's one AAC-LC encoder, and the muxing of its packets into TS segments."""

    def __init__(self, bitrate: int) -> None:
        # PyAV copies codec parameters into another container (the AAC config the TS muxer
        # needs for ADTS headers) only from a stream, so the encoder lives on a stream of a
        # container that is never written to.
        self._host = av.open(io.BytesIO(), "w", format="mpegts")
        stream: AudioStream = self._host.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        stream.codec_context.bit_rate = bitrate
        stream.time_base = TIME_BASE
        self._host.start_encoding()  # opens the encoder and fills in its parameters
        self._stream = stream
        self._pending = np.zeros(0, np.int16)
        self.samples = 0
        """Samples taken in."""
        self._pts = 0

    def encode(self, pcm: Pcm) -> list[AacPacket]:
        """Whatever packets these samples complete (the encoder takes 1024 at a time)."""
        pending = np.concatenate((self._pending, pcm)) if len(self._pending) else pcm
        self.samples += len(pcm)
        whole = len(pending) - len(pending) % AAC_FRAME
        packets: list[AacPacket] = []
        for start in range(0, whole, AAC_FRAME):
            packets += self._encode(pending[start : start + AAC_FRAME])
        self._pending = pending[whole:]
        return packets

    def flush(self) -> list[AacPacket]:
        """The rest: the last, short frame and what the encoder still holds."""
        packets = self._encode(self._pending) if len(self._pending) else []
        self._pending = np.zeros(0, np.int16)
        return packets + self._stamp(self._stream.encode(None))

    def mux(self, packets: list[AacPacket]) -> bytes:
        """One TS segment of these packets (their timestamps are rebased to 90 kHz)."""
        out = io.BytesIO()
        with av.open(out, "w", format="mpegts", container_options=_TS_OPTIONS) as segment:
            stream = segment.add_stream_from_template(self._stream)
            for packet in packets:
                packet.stream = stream
                segment.mux(packet)
        return out.getvalue()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._host.close()

    def _encode(self, block: Pcm) -> list[AacPacket]:
        planar = (block.astype(np.float32) / 32768).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        return self._stamp(self._stream.encode(frame))

    def _stamp(self, packets: list[AacPacket]) -> list[AacPacket]:
        # Our own clock: packet n starts where packet n-1 ended, from 0, whatever the
        # encoder's priming offset, so timestamps run on across segments by construction.
        for packet in packets:
            packet.time_base = TIME_BASE
            packet.pts = packet.dts = self._pts
            self._pts += packet.duration or AAC_FRAME
        return packets


def _write_atomically(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Readers (nginx, a CDN) see the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
