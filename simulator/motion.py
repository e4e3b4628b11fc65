"""Simulated motion: samples streamed on a virtual clock, with faults.

The samples come from a source: a recorded or synthetic walk (:class:`RecordedSamples`),
or a synthetic limb that makes them as time passes (:mod:`simulator.limb`). They are
handed out when the clock reaches their time, as a sensor would deliver them. Injected
faults change what comes out (nothing, the same values again, a wrong timestamp, an
impossible value) while the delivery timing stays that of the source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Protocol

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


class SampleSource(Protocol):
    """Where simulated samples come from, in time order."""

    @property
    def start_s(self) -> float: ...

    @property
    def end_s(self) -> float:
        """The last sample's time (infinite for a source that never runs out)."""

    def until(self, now_s: float) -> list[Sample]:
        """The samples not handed out yet with a time up to ``now_s``; EOFError once
        nothing is left."""


SAME_TIME_S = 1e-9
"""A sample stamped within this of a tick belongs to that tick (float rounding of the
accumulated clock must not hold it back a tick)."""


class RecordedSamples:
    """A list of samples (a recording, a synthetic walk) as a source."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        if not samples:
            raise ValueError("a simulated walk needs at least one sample")
        self._samples = samples
        self._next = 0

    @property
    def start_s(self) -> float:
        return self._samples[0].t_s

    @property
    def end_s(self) -> float:
        return self._samples[-1].t_s

    def until(self, now_s: float) -> list[Sample]:
        if self._next >= len(self._samples):
            raise EOFError("end of the simulated walk")
        first = end = self._next
        samples, due_s = self._samples, now_s + SAME_TIME_S
        while end < len(samples) and samples[end].t_s <= due_s:
            end += 1
        self._next = end
        return list(samples[first:end])


class SimulatedMotion:
    """A MotionSensor over a sample source, paced by a clock, with injectable faults."""

    def __init__(self, source: SampleSource | Sequence[Sample], clock: Clock) -> None:
        self.source = RecordedSamples(source) if isinstance(source, Sequence) else source
        self._clock = clock
        self._closed = False
        self._injections: list[Injection] = []
        self._frozen: Sample | None = None
        self._shifted: set[int] = set()

    @property
    def start_s(self) -> float:
        return self.source.start_s

    @property
    def end_s(self) -> float:
        return self.source.end_s

    def inject(self, fault: MotionFault, at_s: float, duration_s: float = math.inf) -> None:
        self._injections.append(Injection(fault, at_s, duration_s))

    def read(self) -> list[Sample]:
        if self._closed:
            raise EOFError("the simulated sensor was closed")
        now = self._clock.now()
        if self._injections and any(i.fault is MotionFault.PORT_GONE and i.covers(now)
                                    for i in self._injections):
            raise SensorError("motion sensor port disappeared")
        samples = self.source.until(now)
        if not self._injections:
            return samples
        applied = (self._apply(sample) for sample in samples)
        return [sample for sample in applied if sample is not None]

    def close(self) -> None:
        self._closed = True

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
