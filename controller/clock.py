"""Session clocks. The core never reads wall time itself: it asks one of these.

A virtual clock makes a simulated session run faster than real time, or paced to it,
with the same code path as a session on hardware.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    tick_s: float
    paced: bool
    """Whether ticks follow the wall clock (a patient's session), or run as fast as the
    machine goes (a replay, a test): only then is a wall-clock delay a fault."""

    def now(self) -> float: ...

    def next_tick(self) -> float:
        """Move on to the next control tick (sleeping if paced) and return its time."""


class VirtualClock:
    """Simulated time; ``realtime`` paces it to the wall clock for a watched demo."""

    def __init__(self, tick_s: float, start_s: float = 0.0, realtime: bool = False) -> None:
        self.tick_s = tick_s
        self.paced = realtime
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

    def wall_time_of(self, t_s: float) -> float:
        """The monotonic wall time a paced clock schedules session time ``t_s`` for."""
        return self._wall_origin + t_s

    def stall(self, seconds: float) -> None:
        """Make the next tick come late, as a blocked control loop would."""
        self._stall_s += seconds


class MonotonicClock:
    """Real time for hardware sessions.

    Without ``wake_up`` it ticks on a fixed grid of the monotonic clock, sleeping between
    ticks. With ``wake_up`` (a sensor's ``wait_for_samples(timeout_s) -> bool``) the loop
    is driven by the samples instead: a tick starts as soon as the sensor has new samples,
    so a sample does not wait for the next grid point before the detector sees it; and at
    the latest ``tick_s`` after the previous tick, so timers, keep-alives, the silence
    check and the supervisor's loop-late watchdog still run when no sample comes.
    """

    def __init__(self, tick_s: float,
                 wake_up: Callable[[float], bool] | None = None) -> None:
        self.tick_s = tick_s
        self.paced = True
        self._wake_up = wake_up
        self._last_tick_s = time.monotonic()

    def now(self) -> float:
        return time.monotonic()

    def next_tick(self) -> float:
        if self._wake_up is not None:
            remaining_s = self._last_tick_s + self.tick_s - time.monotonic()
            if remaining_s > 0:
                self._wake_up(remaining_s)
            self._last_tick_s = time.monotonic()
            return self._last_tick_s
        self._last_tick_s += self.tick_s
        now = time.monotonic()
        if self._last_tick_s > now:
            time.sleep(self._last_tick_s - now)
        else:
            self._last_tick_s = now
        return time.monotonic()
