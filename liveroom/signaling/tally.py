"""Counts by name, cheap enough for every Socket.IO event: a dict increment, no lock, no label
lookup. ``liveroom.metrics`` turns them into Prometheus counters when it is scraped.

Names are bounded, so the metrics' label values are too: a client can send any event name, and
each would otherwise become a series of its own.
"""

from __future__ import annotations

from collections.abc import Callable

OTHER = "other"
"""Where every name that is not counted under its own goes."""


class Tally:
    """Counts per name. A name counts as itself if ``known(name)`` (default: any string) and
    fewer than ``limit`` names are kept already; any other counts as :data:`OTHER`."""

    def __init__(self, known: Callable[[str], bool] | None = None, *, limit: int = 100) -> None:
        self.counts: dict[str, int] = {}
        self._known = known
        self._limit = limit

    def add(self, name: object) -> None:
        if isinstance(name, str) and name in self.counts:
            self.counts[name] += 1
            return
        key = name if isinstance(name, str) and self._accepts(name) else OTHER
        self.counts[key] = self.counts.get(key, 0) + 1

    def _accepts(self, name: str) -> bool:
        if len(self.counts) >= self._limit:
            return False
        return self._known(name) if self._known is not None else True

    def total(self) -> int:
        return sum(self.counts.values())
