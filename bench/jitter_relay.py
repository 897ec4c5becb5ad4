"""A loopback UDP relay that delays every datagram by ``delay ± jitter`` ms: network jitter for
one WebRTC leg, without ``tc netem`` (which needs the kernel's ``sch_netem``).

``python bench/jitter_relay.py --delay-ms 20 --jitter-ms 10`` reads commands on stdin and answers
one line each on stdout:

- ``pair SPEAKER_PORT`` → ``A B``: two new sockets on 127.0.0.1. ``A`` is shown to the speaker as
  the remote end's candidate, ``B`` to the remote end as the speaker's. What arrives at ``A`` goes
  out of ``B`` to the remote end; what arrives at ``B`` goes out of ``A`` to 127.0.0.1:SPEAKER_PORT.
- ``remote A REMOTE_PORT`` → ``ok``: where the pair whose first socket is ``A`` sends on to
  (known once the answer is in; datagrams from the speaker before that are dropped, and ICE
  sends its checks again).
- ``stats`` → one JSON object: datagrams relayed each way, the delays drawn, and how late the
  relay's event loop actually sent them.

Each datagram, in both directions, is held for a delay drawn uniformly from
``[delay − jitter, delay + jitter]`` (what ``netem delay 20ms 10ms`` does without a distribution
table), independently of the others. With audio packets 20 ms apart and a spread of at most
2 × jitter ≤ 20 ms they are not reordered. Both peers keep seeing one consistent address for the
other (the relay's sockets), so ICE needs no peer-reflexive candidates: the sockets are the
candidates. Loopback only; the process dies with its parent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import random
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

LOOPBACK = "127.0.0.1"
PR_SET_PDEATHSIG = 1


@dataclass
class Direction:
    """Datagrams relayed one way, the delays drawn for them and how late they went out."""

    relayed: int = 0
    dropped: int = 0
    delays_ms: list[float] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | int | None]:
        def q(values: list[float], share: float) -> float | None:
            if not values:
                return None
            ordered = sorted(values)
            return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)

        return {
            "relayed": self.relayed,
            "dropped": self.dropped,
            "delay_min_ms": q(self.delays_ms, 0.0),
            "delay_p50_ms": q(self.delays_ms, 0.5),
            "delay_max_ms": q(self.delays_ms, 1.0),
            "late_p50_ms": q(self.late_ms, 0.5),
            "late_p95_ms": q(self.late_ms, 0.95),
            "late_max_ms": q(self.late_ms, 1.0),
        }


class Side(asyncio.DatagramProtocol):
    """One socket of a pair: hands what it receives to the relay."""

    def __init__(self, relay: Relay, pair: Pair, name: str) -> None:
        self.relay = relay
        self.pair = pair
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A datagram endpoint's transport (the selector loop's class does not inherit from
        # asyncio.DatagramTransport, so no isinstance check).
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.relay.forward(self.pair, self.name, data)


@dataclass
class Pair:
    speaker_port: int
    remote_port: int | None = None
    a: Side | None = None
    b: Side | None = None


class Relay:
    def __init__(self, delay_ms: float, jitter_ms: float, seed: int) -> None:
        self.delay_ms = delay_ms
        self.jitter_ms = jitter_ms
        self.rng = random.Random(seed)
        self.pairs: dict[int, Pair] = {}
        self.to_remote = Direction()
        self.to_speaker = Direction()

    async def add_pair(self, speaker_port: int) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        pair = Pair(speaker_port)
        _, a = await loop.create_datagram_endpoint(
            lambda: Side(self, pair, "a"), local_addr=(LOOPBACK, 0)
        )
        _, b = await loop.create_datagram_endpoint(
            lambda: Side(self, pair, "b"), local_addr=(LOOPBACK, 0)
        )
        pair.a, pair.b = a, b
        ports = (_port(a), _port(b))
        self.pairs[ports[0]] = pair
        return ports

    def forward(self, pair: Pair, arrived_at: str, data: bytes) -> None:
        if arrived_at == "a":  # from the speaker, on to the remote end
            out, port, direction = pair.b, pair.remote_port, self.to_remote
        else:
            out, port, direction = pair.a, pair.speaker_port, self.to_speaker
        if out is None or out.transport is None or port is None:
            direction.dropped += 1
            return
        delay_ms = max(0.0, self.rng.uniform(-1, 1) * self.jitter_ms + self.delay_ms)
        direction.delays_ms.append(delay_ms)
        loop = asyncio.get_running_loop()
        due = loop.time() + delay_ms / 1000
        loop.call_at(due, self._send, out.transport, data, port, due, direction)

    def _send(
        self,
        transport: asyncio.DatagramTransport,
        data: bytes,
        port: int,
        due: float,
        direction: Direction,
    ) -> None:
        direction.late_ms.append((asyncio.get_running_loop().time() - due) * 1000)
        if not transport.is_closing():
            transport.sendto(data, (LOOPBACK, port))
            direction.relayed += 1

    def stats(self) -> dict[str, object]:
        return {
            "delay_ms": self.delay_ms,
            "jitter_ms": self.jitter_ms,
            "pairs": len(self.pairs),
            "to_remote": self.to_remote.summary(),
            "to_speaker": self.to_speaker.summary(),
        }

    def close(self) -> None:
        for pair in self.pairs.values():
            for side in (pair.a, pair.b):
                if side is not None and side.transport is not None:
                    side.transport.close()


def _port(side: Side) -> int:
    assert side.transport is not None
    return int(side.transport.get_extra_info("sockname")[1])


async def serve(relay: Relay) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := (await reader.readline()).decode():
            words = line.split()
            if words[:1] == ["pair"] and len(words) == 2:
                a, b = await relay.add_pair(int(words[1]))
                answer = f"{a} {b}"
            elif words[:1] == ["remote"] and len(words) == 3 and int(words[1]) in relay.pairs:
                relay.pairs[int(words[1])].remote_port = int(words[2])
                answer = "ok"
            elif words == ["stats"]:
                answer = json.dumps(relay.stats())
            else:
                answer = "error " + json.dumps(line.strip())
            sys.stdout.write(answer + "\n")
            sys.stdout.flush()
    finally:
        relay.close()


def die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--jitter-ms", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.jitter_ms < 0 or args.delay_ms < 0:
        parser.error("--delay-ms and --jitter-ms must be ≥ 0")
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver ends us (stdin closed, or a kill)
    asyncio.run(serve(Relay(args.delay_ms, args.jitter_ms, args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
