"""Sensor plausibility, apart from the output limits.

The watch judges the motion stream (silent, frozen, timestamps going backwards or
jumping, values no working sensor reads, and, on the first seconds, rate and units:
:mod:`controller.sensor_units`) and reports each finding to the supervisor as a
fault. It is its own object so a sensorless, cued exercise can run without it while
every output limit of the supervisor stays in force.

A stream can also lie in ways no single value shows, so the watch keeps evidence over time:

* a value pinned at full scale: a 16-bit sensor saturates exactly there, so the
  full-scale limit can never fire on it; held for more than a few samples, it is a fault
  (a real impact saturates for one sample: walk 1 of the shared data does, at heel strikes);
* a jump no limb makes between two samples (a byte swapped on the wire passes the
  WitMotion sum checksum and decodes to a wrong value): the sample is rejected, never
  shown to the detector, and counted; a run of them is a fault;
* the usable rate: samples that arrive and pass, per second, measured over the whole
  session (lost or damaged packets thin the stream out); below what the mode's detector
  needs it is a fault, not a session that runs on blind and ends "completed".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.safety import SafetyLog, SafetySupervisor
from controller.safety_limits import HARD_LIMITS, HardLimits
from controller.sensor_units import UnitsCheck
from controller.types import FaultKind, Sample

_NEEDS_FRESH_SAMPLE = frozenset({FaultKind.SENSOR_SILENT, FaultKind.SENSOR_ERROR,
                                 FaultKind.TIME_JUMP, FaultKind.TIME_BACKWARDS})


MIN_RATE_HZ = {"gait": 50.0, "exercise": 25.0}
"""The slowest stream each mode's detector is built for (one sample per control tick; a
slower tick would also trip the 50 ms loop-late watchdog)."""

SATURATION_SHARE = 0.999
"""A reading this close to full scale is at the end of the sensor's range (int16 codes
32735 and up)."""
SATURATED_SAMPLES_MAX = 4
"""More consecutive samples than this at full scale is a stuck value, not an impact."""
GYRO_STEP_MAX_DPS = 1500.0
"""Largest change of one gyro axis between consecutive samples that is believed. The four
shared foot-worn walks change by at most 940 °/s from one sample to the next (at heel
strike, at 102 and 205 Hz); the knee exercises by at most 420 °/s at 25 Hz."""
JUMP_SPAN_MAX_S = 0.1
"""Samples further apart than this are not compared (after a gap anything may change)."""
REJECTED_RUN_MAX = 5
"""More rejected samples in a row than this is a fault: the stream is not recovering."""
RATE_WINDOW_S = 1.0
"""The usable rate is measured over consecutive windows this long."""
USABLE_RATE_SHARE = 0.95
"""A window this share of the mode's minimum rate still passes: a steady stream at the
minimum counts one sample more or less per window. A 100 Hz WitMotion stream with 30 % of
its packets damaged keeps about 49 usable samples a second (a sample needs its acc and gyro
packets), 43-53 per window, so a gait session faults on it within seconds."""

CLEAR_WINDOWS = 2
"""A degraded stream is cleared on this many whole windows after the last thin one."""
CLEAR_MARGIN = 1.2
"""...whose mean usable rate is this share of the mode's minimum: a 100 Hz stream that
recovered clears 1-2 s later; one still at 30 % damaged packets (about 49 samples/s, the
mean of two windows 42-56) never reaches the 60 gait needs to clear."""
SENSOR_RATE_SHARE = 0.9
"""Where the rate the sensor sends is known (``fes run`` measures it before the session),
clearing needs only this share of it when that is below the margin above: a 50 Hz sensor
in gait can never show 60 a second, and was never cleared. A whole stream's windows come
within a sample or two of its rate, and the rate measured before the session within a few
percent of it (a 50 Hz stream measures 50-51); a line still losing a tenth of its samples
has not healed. The rate sent counts the packets damaged on the line too, so a stream
damaged from the start is not taken for a slow sensor: at 30 % damaged packets a 100 Hz
stream is measured sending well over 67 a second, and still clears only at the margin.
Clearing never drops below the fault's own limit."""

@dataclass(frozen=True)
class SensorLimits:
    silent_s: float = 0.1
    frozen_s: float = 0.5
    min_rate_hz: float = MIN_RATE_HZ["gait"]


class SensorWatch:
    """Checks every sample and the silence between them; clocked by the session."""

    def __init__(self, supervisor: SafetySupervisor, limits: SensorLimits,
                 hard: HardLimits = HARD_LIMITS, log: SafetyLog | None = None,
                 sensor_rate_hz: float | None = None) -> None:
        """``sensor_rate_hz``: samples a second the sensor sends, damaged ones included
        (None where unknown: a recording, an in-memory source); see
        :data:`SENSOR_RATE_SHARE`."""
        if sensor_rate_hz is not None and not (math.isfinite(sensor_rate_hz)
                                               and sensor_rate_hz > 0):
            raise ValueError(f"the sensor's rate must be a positive number of samples/s, "
                             f"not {sensor_rate_hz}")
        self._supervisor = supervisor
        self._limits = limits
        self._log = log
        self._acc_limit_mps2 = hard.acc_full_scale_mps2 * hard.full_scale_allowance
        self._gyro_limit_dps = hard.gyro_full_scale_dps * hard.full_scale_allowance
        self._acc_saturated_mps2 = hard.acc_full_scale_mps2 * SATURATION_SHARE
        self._gyro_saturated_dps = hard.gyro_full_scale_dps * SATURATION_SHARE
        self._acc_in_range_mps2 = min(self._acc_limit_mps2, self._acc_saturated_mps2)
        self._gyro_in_range_dps = min(self._gyro_limit_dps, self._gyro_saturated_dps)
        """Values strictly inside these need neither range check (most samples)."""
        self._saturated_run = 0
        self._kept: Sample | None = None
        """The last sample shown to the detector: the next one is compared with it."""
        self._rejected_run = 0
        self.rejected_samples = 0
        """Samples withheld from the detector for a jump no limb makes."""
        self._window_start_s: float | None = None
        self._window_usable = 0
        self._window_rejected = 0
        self._rate_min_hz = USABLE_RATE_SHARE * limits.min_rate_hz
        self.usable_rate_hz: float | None = None
        """Usable samples a second over the last whole window (None before the first)."""
        self.lowest_rate_hz: float | None = None
        self._rates_hz: tuple[float, ...] = ()
        """The last :data:`CLEAR_WINDOWS` windows' usable rates, newest last."""
        clear_rate_hz = CLEAR_MARGIN * limits.min_rate_hz
        if sensor_rate_hz is not None:
            clear_rate_hz = min(clear_rate_hz, SENSOR_RATE_SHARE * sensor_rate_hz)
        self._clear_rate_hz = max(self._rate_min_hz, clear_rate_hz)
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

    def observe(self, sample: Sample, now_s: float) -> bool:
        """Check one sample: time order, plausibility, a frozen stream, a stuck or jumping
        value, the usable rate; False if the detector must not see it (a rejected jump).

        Faults are stamped ``now_s``, the session clock, when they became visible: the
        sample's own timestamp may be the very thing that is wrong.
        """
        fault = self._supervisor.fault
        t = sample.t_s
        ok = True
        gap = False
        if self._last_t_s is not None:
            if not t > self._last_t_s:
                fault(FaultKind.TIME_BACKWARDS, now_s,
                      f"sample time {t:.4f} s after {self._last_t_s:.4f} s")
                return True
            step_s = t - self._last_t_s
            gap = step_s > self._limits.silent_s
            if gap and t - now_s > self._limits.silent_s:
                fault(FaultKind.TIME_JUMP, now_s, f"sample time jumped {step_s:.3f} s, "
                      f"{t - now_s:.3f} s ahead of the session's clock")
                ok = False
            elif gap and not any(f.kind is FaultKind.SENSOR_SILENT
                                 for f in self._supervisor.faults):
                fault(FaultKind.SENSOR_SILENT, now_s,
                      f"no sample for {1000 * step_s:.0f} ms (samples lost)")
        ax, ay, az = sample.acc_mps2
        gx, gy, gz = sample.gyro_dps
        acc_in, gyro_in = self._acc_in_range_mps2, self._gyro_in_range_dps
        if -acc_in < ax < acc_in and -acc_in < ay < acc_in and -acc_in < az < acc_in and \
                -gyro_in < gx < gyro_in and -gyro_in < gy < gyro_in and -gyro_in < gz < gyro_in:
            self._saturated_run = 0  # finite, short of saturation, so within full scale
        else:
            ok = self._beyond_range(ax, ay, az, gx, gy, gz, now_s) and ok
        usable = self._continuous(sample, now_s)
        ok = ok and usable
        values = sample.acc_mps2 + sample.gyro_dps
        if values != self._last_values:
            self._last_values = values
            self._last_change_s = t
        elif self._last_change_s is not None and t - self._last_change_s > self._limits.frozen_s:
            fault(FaultKind.SENSOR_FROZEN, now_s,
                  f"identical samples for {t - self._last_change_s:.2f} s")
            ok = False
        if not self._units.done:
            if gap:
                self._units.restart_window()
            problem = self._units.observe(t, sample.acc_mps2, sample.gyro_dps)
            if problem:
                fault(FaultKind.IMPLAUSIBLE_VALUE, now_s, problem)
        self._count(t, usable, gap, now_s)  # frozen or stuck values are faults of their own
        self._last_t_s = t
        self._last_ok = ok
        return usable

    def _beyond_range(self, ax: float, ay: float, az: float, gx: float, gy: float, gz: float,
                      now_s: float) -> bool:
        """A sample at or past the end of the sensor's range: beyond full scale (or not
        finite) is a fault at once, held at the end of the range a fault after a few
        samples. False if the sample is not believable."""
        fault = self._supervisor.fault
        ok = True
        acc_max = max(abs(ax), abs(ay), abs(az))
        gyro_max = max(abs(gx), abs(gy), abs(gz))
        if not (acc_max <= self._acc_limit_mps2 and gyro_max <= self._gyro_limit_dps
                and math.isfinite(ax + ay + az + gx + gy + gz)):
            fault(FaultKind.IMPLAUSIBLE_VALUE, now_s,
                  f"max |acc| {acc_max:.1f} m/s², max |gyro| {gyro_max:.1f} °/s beyond "
                  "the sensor's full scale")
            ok = False
        if acc_max >= self._acc_saturated_mps2 or gyro_max >= self._gyro_saturated_dps:
            self._saturated_run += 1
            if self._saturated_run > SATURATED_SAMPLES_MAX:
                fault(FaultKind.IMPLAUSIBLE_VALUE, now_s,
                      f"{self._saturated_run} samples in a row at the end of the sensor's "
                      f"range (max |acc| {acc_max:.1f} m/s², max |gyro| {gyro_max:.0f} °/s): "
                      "a stuck value, not movement")
                ok = False
        else:
            self._saturated_run = 0
        return ok

    def warnings(self) -> list[str]:
        """What the stream lost, in words (for the session's summary)."""
        found = []
        if self.rejected_samples:
            found.append(f"{self.rejected_samples} sensor samples rejected: a jump of more "
                         f"than {GYRO_STEP_MAX_DPS:g} °/s between samples (damaged packets)")
        if self.lowest_rate_hz is not None and self.lowest_rate_hz < self._rate_min_hz:
            found.append(f"the sensor's usable rate fell to {self.lowest_rate_hz:.0f} "
                         f"samples/s (needs {self._limits.min_rate_hz:g})")
        return found

    def _continuous(self, sample: Sample, now_s: float) -> bool:
        """Whether ``sample`` follows on from the last sample kept (False: reject it)."""
        kept = self._kept
        if kept is None or sample.t_s - kept.t_s > JUMP_SPAN_MAX_S:
            self._kept, self._rejected_run = sample, 0
            return True
        g0, g1, g2 = sample.gyro_dps
        k0, k1, k2 = kept.gyro_dps
        step_dps = max(abs(g0 - k0), abs(g1 - k1), abs(g2 - k2))
        if step_dps <= GYRO_STEP_MAX_DPS:
            self._kept, self._rejected_run = sample, 0
            return True
        self.rejected_samples += 1
        self._window_rejected += 1
        self._rejected_run += 1
        if self._rejected_run > REJECTED_RUN_MAX:
            self._supervisor.fault(
                FaultKind.IMPLAUSIBLE_VALUE, now_s,
                f"{self._rejected_run} samples in a row jumped more than "
                f"{GYRO_STEP_MAX_DPS:g} °/s from the last believable one (damaged packets)")
            self._kept, self._rejected_run = sample, 0  # judge what follows from here
        return False

    def _count(self, t_s: float, usable: bool, gap: bool, now_s: float) -> None:
        """Count usable samples per window; a window too thin is a fault.

        Windows start once :class:`UnitsCheck` has judged the first seconds' rate, so a
        stream that was too slow from the start is named once, as a setup problem; and
        again after a gap longer than the silence limit (a silence is its own fault, and
        a window spanning it would add a second one)."""
        start = self._window_start_s
        if gap and start is not None:
            self._open_window(t_s, usable)
            self._rates_hz = ()
            return
        if start is None:
            if self._units.rate_judged:
                self._window_start_s = t_s
                self._window_usable = int(usable)
            return
        if t_s - start < RATE_WINDOW_S:
            self._window_usable += usable
            return
        rate_hz = self._window_usable / (t_s - start)
        self.usable_rate_hz = rate_hz
        self._rates_hz = (*self._rates_hz[-(CLEAR_WINDOWS - 1):], rate_hz)
        if self.lowest_rate_hz is None or rate_hz < self.lowest_rate_hz:
            self.lowest_rate_hz = rate_hz
        if rate_hz < self._rate_min_hz:
            self._supervisor.fault(
                FaultKind.SENSOR_DEGRADED, now_s,
                f"{rate_hz:.0f} usable samples/s over the last {t_s - start:.1f} s; this "
                f"mode needs at least {self._limits.min_rate_hz:g} (packets lost or damaged "
                "on the line)")
        if self._window_rejected and self._log is not None:
            self._log.notice(now_s, "sensor_rejected",
                             f"{self._window_rejected} samples rejected in the last "
                             f"{t_s - start:.1f} s, {self.rejected_samples} in all")
        self._open_window(t_s, usable)

    def _open_window(self, t_s: float, usable: bool) -> None:
        self._window_start_s, self._window_usable, self._window_rejected = t_s, int(usable), 0

    def _rate_recovered(self) -> bool:
        """Hysteresis: the last windows each pass the fault's limit and together reach the
        clearing rate, so a stream hovering at the limit is not cleared by one lucky window."""
        rates = self._rates_hz
        return len(rates) == CLEAR_WINDOWS and min(rates) >= self._rate_min_hz \
            and sum(rates) / CLEAR_WINDOWS >= self._clear_rate_hz

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
        if kind is FaultKind.SENSOR_DEGRADED and not self._rate_recovered():
            shown = ", ".join(f"{r:.0f}" for r in self._rates_hz) or "not measured"
            return (f"sensor_degraded: usable rate over the last windows {shown} samples/s; "
                    f"cleared at {self._clear_rate_hz:.0f} on average over "
                    f"{CLEAR_WINDOWS} windows")
        return ""
