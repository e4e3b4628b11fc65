"""Session clocks. The core never reads wall time itself: it asks one of these.

A virtual clock makes a simulated session run faster than real time, or paced to it,
with the same code path as a session on hardware.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    tick_s: float

    def now(self) -> float: ...

    def next_tick(self) -> float:
        """Move on to the next control tick (sleeping if paced) and return its time."""


class VirtualClock:
    """Simulated time; ``realtime`` paces it to the wall clock for a watched demo."""

    def __init__(self, tick_s: float, start_s: float = 0.0, realtime: bool = False) -> None:
        self.tick_s = tick_s
        self._now_s = start_s
        self._realtime = realtime
        self._wall_origin = time.monotonic() - start_s
        self._stall_s = 0.0

    def now(self) -> float:
        return self._now_s

    def next_tick(self) -> float:
        self._now_s += self.tick_s + self._stall_s
        self._stall_s = 0.0
        if self._realtime:
            delay = self._wall_origin + self._now_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return self._now_s

    def stall(self, seconds: float) -> None:
        """Make the next tick come late, as a blocked control loop would."""
        self._stall_s += seconds


class MonotonicClock:
    """Real time for hardware sessions: ticks on a fixed grid of the monotonic clock."""

    def __init__(self, tick_s: float) -> None:
        self.tick_s = tick_s
        self._next_s = time.monotonic()

    def now(self) -> float:
        return time.monotonic()

    def next_tick(self) -> float:
        self._next_s += self.tick_s
        now = time.monotonic()
        if self._next_s > now:
            time.sleep(self._next_s - now)
        else:
            self._next_s = now
        return time.monotonic()
