"""Sensor plausibility, apart from the output limits.

The watch judges the motion stream (silent, frozen, timestamps going backwards or
jumping, values no working sensor reads, and, on the first seconds, rate and units:
:mod:`controller.sensor_units`) and reports each finding to the supervisor as a
fault. It is its own object so a sensorless, cued exercise can run without it while
every output limit of the supervisor stays in force.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.safety import HARD_LIMITS, HardLimits, SafetySupervisor
from controller.sensor_units import UnitsCheck
from controller.types import FaultKind, Sample

_NEEDS_FRESH_SAMPLE = frozenset({FaultKind.SENSOR_SILENT, FaultKind.SENSOR_ERROR,
                                 FaultKind.TIME_JUMP, FaultKind.TIME_BACKWARDS})


MIN_RATE_HZ = {"gait": 50.0, "exercise": 25.0}
"""The slowest stream each mode's detector is built for (one sample per control tick; a
slower tick would also trip the 50 ms loop-late watchdog)."""


@dataclass(frozen=True)
class SensorLimits:
    silent_s: float = 0.1
    frozen_s: float = 0.5
    min_rate_hz: float = MIN_RATE_HZ["gait"]


class SensorWatch:
    """Checks every sample and the silence between them; clocked by the session."""

    def __init__(self, supervisor: SafetySupervisor, limits: SensorLimits,
                 hard: HardLimits = HARD_LIMITS) -> None:
        self._supervisor = supervisor
        self._limits = limits
        self._acc_limit_mps2 = hard.acc_full_scale_mps2 * hard.full_scale_allowance
        self._gyro_limit_dps = hard.gyro_full_scale_dps * hard.full_scale_allowance
        self._started_s: float | None = None
        self._last_t_s: float | None = None
        self._last_values: tuple[float, ...] | None = None
        self._last_change_s: float | None = None
        self._last_ok = True
        self._units = UnitsCheck(limits.min_rate_hz)
        supervisor.add_cause_check(self.cause_present)

    def start(self, now_s: float) -> None:
        """Silence is counted from here until the first sample."""
        self._started_s = now_s

    def observe(self, sample: Sample, now_s: float) -> None:
        """Check one sample: time order, plausibility, a frozen stream.

        Faults are stamped ``now_s``, the session clock, when they became visible: the
        sample's own timestamp may be the very thing that is wrong.
        """
        fault = self._supervisor.fault
        t = sample.t_s
        ok = True
        if self._last_t_s is not None:
            if not t > self._last_t_s:
                fault(FaultKind.TIME_BACKWARDS, now_s,
                      f"sample time {t:.4f} s after {self._last_t_s:.4f} s")
                return
            if t - self._last_t_s > self._limits.silent_s and not any(
                    f.kind is FaultKind.SENSOR_SILENT for f in self._supervisor.faults):
                fault(FaultKind.TIME_JUMP, now_s, f"sample time jumped {t - self._last_t_s:.3f} s")
                ok = False
        ax, ay, az = sample.acc_mps2
        gx, gy, gz = sample.gyro_dps
        acc_max = max(abs(ax), abs(ay), abs(az))
        gyro_max = max(abs(gx), abs(gy), abs(gz))
        if not (acc_max <= self._acc_limit_mps2 and gyro_max <= self._gyro_limit_dps
                and math.isfinite(ax + ay + az + gx + gy + gz)):
            fault(FaultKind.IMPLAUSIBLE_VALUE, now_s,
                  f"max |acc| {acc_max:.1f} m/s², max |gyro| {gyro_max:.1f} °/s beyond "
                  "the sensor's full scale")
            ok = False
        values = sample.acc_mps2 + sample.gyro_dps
        if values != self._last_values:
            self._last_values = values
            self._last_change_s = t
        elif self._last_change_s is not None and t - self._last_change_s > self._limits.frozen_s:
            fault(FaultKind.SENSOR_FROZEN, now_s,
                  f"identical samples for {t - self._last_change_s:.2f} s")
            ok = False
        if not self._units.done:
            problem = self._units.observe(t, sample.acc_mps2, sample.gyro_dps)
            if problem:
                fault(FaultKind.IMPLAUSIBLE_VALUE, now_s, problem)
        self._last_t_s = t
        self._last_ok = ok

    def tick(self, now_s: float) -> None:
        """No sample for longer than the silence limit is a fault."""
        heard = self._last_t_s if self._last_t_s is not None else self._started_s
        if heard is not None and now_s - heard > self._limits.silent_s:
            self._supervisor.fault(FaultKind.SENSOR_SILENT, now_s,
                                   f"no sample for {1000 * (now_s - heard):.0f} ms")

    def cause_present(self, kind: FaultKind, now_s: float) -> str:
        """Why a sensor fault cannot be cleared yet ('' when it can, or is not ours)."""
        if kind in _NEEDS_FRESH_SAMPLE and (
                self._last_t_s is None or now_s - self._last_t_s > self._limits.silent_s):
            return f"{kind.value}: no fresh sample"
        if kind is FaultKind.SENSOR_FROZEN and (
                self._last_change_s is None
                or now_s - self._last_change_s > self._limits.frozen_s):
            return "sensor_frozen: samples still identical"
        if kind is FaultKind.IMPLAUSIBLE_VALUE and self._units.problem:
            return f"implausible_value: {self._units.problem}"
        if kind is FaultKind.IMPLAUSIBLE_VALUE and not self._last_ok:
            return "implausible_value: last sample still implausible"
        return ""
