"""What the live view plots, fed by the session as an observer and read by the GUI.

The control loop only writes into fixed-size rings (a long session costs no more memory
than a short one, and an append is a few array stores under a lock); the GUI thread takes
a copy at its own frame rate. Nothing here can make the loop wait for drawing.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from controller.observe import SessionObserver
from controller.types import Cue, Sample

SPAN_S = 20.0
"""How much of the recent past the plots show."""
GRAVITY_TAU_S = 0.3
"""The tilt is that of the low-passed acceleration: gravity's direction, without most of
the movement's own acceleration."""
MAX_RATE_HZ = 250.0


@dataclass(frozen=True)
class LiveSnapshot:
    t_s: np.ndarray
    tilt_deg: np.ndarray
    """Tilt of the sensor from where it was at the start of the session (from gravity's
    direction, low-passed)."""
    rate_dps: np.ndarray
    """Angular velocity about the axis that moves most in the window (the sagittal one
    for walking and for most exercises)."""
    command_t_s: np.ndarray
    command_ma: dict[int, np.ndarray]
    phases: list[tuple[float, str]]
    cue: Cue | None


class LiveBuffer(SessionObserver):
    def __init__(self, channels: list[int], span_s: float = SPAN_S) -> None:
        size = int(span_s * MAX_RATE_HZ)
        self._t_s = np.full(size, np.nan)
        self._tilt_deg = np.zeros(size)
        self._gyro_dps = np.zeros((size, 3))
        self._next = 0
        self._count = 0
        self._rest: np.ndarray | None = None
        self._gravity: np.ndarray | None = None
        self._last_t_s: float | None = None
        self._channels = channels
        self._commands: deque[tuple[float, tuple[float, ...]]] = deque(maxlen=4000)
        self._phases: deque[tuple[float, str]] = deque(maxlen=1000)
        self._cue: Cue | None = None
        self._lock = threading.Lock()

    # -- the loop's side --------------------------------------------------------------------

    def on_sample(self, sample: Sample) -> None:
        acc = np.asarray(sample.acc_mps2)
        if self._gravity is None or self._last_t_s is None:
            self._gravity = acc
        else:
            pull = min(max(sample.t_s - self._last_t_s, 0.0) / GRAVITY_TAU_S, 1.0)
            self._gravity = self._gravity + pull * (acc - self._gravity)
        self._last_t_s = sample.t_s
        norm = float(np.linalg.norm(self._gravity))
        direction = self._gravity / norm if norm > 0 else self._gravity
        with self._lock:
            if self._rest is None:
                self._rest = direction
            cosine = float(np.clip(direction @ self._rest, -1.0, 1.0))
            i = self._next
            self._t_s[i] = sample.t_s
            self._tilt_deg[i] = np.degrees(np.arccos(cosine))
            self._gyro_dps[i] = sample.gyro_dps
            self._next = (i + 1) % len(self._t_s)
            self._count = min(self._count + 1, len(self._t_s))

    def on_command(self, t_s: float, amplitudes_ma: Mapping[int, float]) -> None:
        with self._lock:
            self._commands.append((t_s, tuple(amplitudes_ma.get(ch, 0.0)
                                              for ch in self._channels)))

    def on_phase(self, t_s: float, phase: str) -> None:
        with self._lock:
            self._phases.append((t_s, phase))

    def on_cue(self, cue: Cue) -> None:
        with self._lock:
            self._cue = cue

    # -- the GUI's side ---------------------------------------------------------------------

    def snapshot_cue(self) -> Cue | None:
        with self._lock:
            return self._cue

    def snapshot(self) -> LiveSnapshot:
        with self._lock:
            order = np.roll(np.arange(len(self._t_s)), -self._next)[-self._count:] \
                if self._count else np.arange(0)
            t_s = self._t_s[order].copy()
            tilt = self._tilt_deg[order].copy()
            gyro = self._gyro_dps[order].copy()
            commands = list(self._commands)
            phases = list(self._phases)
            cue = self._cue
        axis = int(np.argmax(gyro.var(axis=0))) if len(gyro) > 1 else 0
        start_s = t_s[-1] - SPAN_S if len(t_s) else 0.0
        command_t = np.array([t for t, _ in commands])
        levels = np.zeros((len(commands), len(self._channels)))
        if commands:
            levels[:] = [ma for _, ma in commands]
        return LiveSnapshot(
            t_s, tilt, gyro[:, axis] if len(gyro) else np.zeros(0), command_t,
            {ch: levels[:, k] for k, ch in enumerate(self._channels)},
            [(t, p) for t, p in phases if t >= start_s - 10.0], cue)
