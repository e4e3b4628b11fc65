"""Simulated motion: a recorded or synthetic walk streamed on a virtual clock, with faults.

Samples are handed out when the clock reaches their time, as a sensor would deliver
them. Injected faults change what comes out (nothing, the same values again, a wrong
timestamp, an impossible value) while the delivery timing stays that of the walk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum

from controller.clock import Clock
from controller.devices.base import SensorError
from controller.types import Sample


class MotionFault(str, Enum):
    SILENT = "silent"
    FROZEN = "frozen"
    TIME_BACKWARDS = "time_backwards"
    TIME_JUMP = "time_jump"
    IMPLAUSIBLE = "implausible"
    PORT_GONE = "port_gone"
    """The sensor's port disappears: reading raises, as a serial driver does."""


_TIME_SHIFT_S = {MotionFault.TIME_BACKWARDS: -0.5, MotionFault.TIME_JUMP: +0.5}
"""One sample of such an injection carries a timestamp off by this much."""


@dataclass(frozen=True)
class Injection:
    fault: MotionFault
    at_s: float
    duration_s: float = math.inf

    def covers(self, t_s: float) -> bool:
        return self.at_s <= t_s < self.at_s + self.duration_s


class SimulatedMotion:
    """A MotionSensor over a list of samples, paced by a clock."""

    def __init__(self, samples: Sequence[Sample], clock: Clock) -> None:
        if not samples:
            raise ValueError("a simulated walk needs at least one sample")
        self._samples = samples
        self._clock = clock
        self._next = 0
        self._injections: list[Injection] = []
        self._frozen: Sample | None = None
        self._shifted: set[int] = set()

    @property
    def start_s(self) -> float:
        return self._samples[0].t_s

    @property
    def end_s(self) -> float:
        return self._samples[-1].t_s

    def inject(self, fault: MotionFault, at_s: float, duration_s: float = math.inf) -> None:
        self._injections.append(Injection(fault, at_s, duration_s))

    def read(self) -> list[Sample]:
        if self._next >= len(self._samples):
            raise EOFError("end of the simulated walk")
        now = self._clock.now()
        if self._injections and any(i.fault is MotionFault.PORT_GONE and i.covers(now)
                                    for i in self._injections):
            raise SensorError("motion sensor port disappeared")
        out: list[Sample] = []
        while self._next < len(self._samples) and self._samples[self._next].t_s <= now:
            sample = self._apply(self._samples[self._next])
            self._next += 1
            if sample is not None:
                out.append(sample)
        return out

    def close(self) -> None:
        self._next = len(self._samples)

    def _apply(self, sample: Sample) -> Sample | None:
        if not self._injections:
            return sample
        active = {i.fault for i in self._injections if i.covers(sample.t_s)}
        if MotionFault.SILENT in active:
            return None
        if MotionFault.FROZEN in active:
            self._frozen = self._frozen or sample
            return replace(self._frozen, t_s=sample.t_s)
        self._frozen = None
        if MotionFault.IMPLAUSIBLE in active:
            return replace(sample, gyro_dps=(sample.gyro_dps[0], 5000.0, sample.gyro_dps[2]))
        for injection in self._injections:
            shift_s = _TIME_SHIFT_S.get(injection.fault)
            if shift_s is not None and injection.covers(sample.t_s) and \
                    id(injection) not in self._shifted:
                self._shifted.add(id(injection))
                return replace(sample, t_s=sample.t_s + shift_s)
        return sample
