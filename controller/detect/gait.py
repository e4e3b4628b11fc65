"""Online gait events from the sagittal angular velocity and the heel-strike impact.

One stride seen on the calibrated sagittal rate ``w`` (positive = swing rotation), for a
foot- or a shank-worn sensor alike:

    stance ... w dips negative (push-off / pre-swing) ... w swings up through zero to the
    swing peak ... w falls back through zero (terminal-swing reversal) ... impact

* HEEL_OFF: the push-off rotation passes a tenth of its calibrated peak, once per stance
  and only in its last part (judged from the learned stance and stride times).
* TOE_OFF: the bottom of that dip (foot: the push-off peak; shank: the pre-swing minimum),
  emitted as soon as ``w`` has come back halfway, which is a few samples later.
* MID_SWING: the swing peak, once ``w`` has dropped clearly below it.
* HEEL_STRIKE: the acceleration-norm impact peak that follows the terminal-swing reversal,
  or the reversal itself when no impact shows up (soft landing, shuffling).
* STILL: no rotation for longer than a stance phase lasts.

Every threshold is a fraction of a calibrated magnitude or of the stride time, and each
detected stride moves those magnitudes a little (exponential averaging), so the detector
follows speed changes without per-recording constants. A stance refractory period, a
fraction of the stride, keeps the foot-flat rotation after heel strike from passing for
a push-off.

Per-sample work is plain float arithmetic on a fixed set of attributes: no numpy, no
growing containers once calibrated.
"""

from __future__ import annotations

import math
from enum import Enum

from controller.detect.calibration import (
    IMPACT_MIN_MPS2,
    MOVING_DPS,
    GaitCalibration,
    WarmUp,
    replay,
)
from controller.types import GaitEvent, GaitEventKind, Sample

HEEL_OFF_FRACTION = 0.1
"""Push-off rotation past this fraction of its calibrated peak is heel-off."""
HEEL_OFF_LEAD_FRACTION = 0.2
"""Heel-off comes at most this fraction of a stride before toe-off (healthy: ~0.15-0.2)."""
DEFAULT_STANCE_FRACTION = 0.6
"""Stance time assumed, as a fraction of the stride, until toe-offs have been seen."""
STANCE_RANGE_FRACTION = (0.3, 0.9)
TOE_OFF_DEPTH_FRACTION = 0.4
"""The dip before swing must reach this fraction of the calibrated push-off peak."""
TOE_OFF_REBOUND_FRACTION = 0.5
SWING_FRACTION = 0.4
"""A swing must reach this fraction of the calibrated swing peak to count."""
MID_SWING_DROP_FRACTION = 0.7
IMPACT_FRACTION = 0.6
IMPACT_SEARCH_S = 0.15
"""How long after the terminal-swing reversal the impact may come."""
IMPACT_CONFIRM_S = 0.05
"""A peak with no higher value for this long is the impact."""
STANCE_REFRACTORY_FRACTION = 0.3
SWING_TIMEOUT_FRACTION = 0.8
STILL_DPS = 20.0
STILL_MIN_S = 0.5
STILL_STRIDE_FRACTION = 0.75
"""Stillness must outlast a stance phase, else every foot-flat would be a stop."""
ADAPT_RATE = 0.2
AXIS_FORGET = 0.9
"""Per stride, the weight the past keeps in the axis estimate."""


class _Phase(Enum):
    STANCE = 1
    SWING = 2
    IMPACT = 3


class GyroGaitDetector:
    """The gyroscope gait detector (a ``GaitDetector``).

    With a ``calibration`` (from ``calibrate`` on a calibration walk) it detects from the
    first sample. Without one it buffers the first seconds of walking, calibrates on them
    as soon as two heel strikes are in, and replays the buffer: the events of those first
    steps then come out late, their ``detected_at_s`` showing by how much.
    """

    def __init__(self, calibration: GaitCalibration | None = None) -> None:
        self._initial = calibration
        self._engine: _Engine | None = None
        self._warm_up = WarmUp()
        self._calibrated_at_s: float | None = None
        self.reset()

    @property
    def calibration(self) -> GaitCalibration | None:
        """The calibration in use, including what walking has taught it since."""
        return self._engine.calibration() if self._engine else None

    @property
    def calibrated_at_s(self) -> float | None:
        """When self-calibration finished; events before it were replayed late."""
        return self._calibrated_at_s

    def reset(self) -> None:
        """Forget the walk; a calibration given or learned is kept (the mounting is)."""
        kept = self.calibration or self._initial
        self._engine = _Engine(kept) if kept else None
        self._warm_up = WarmUp()

    def update(self, sample: Sample) -> list[GaitEvent]:
        if self._engine is not None:
            return self._engine.step(sample)
        calibration = self._warm_up.feed(sample)
        if calibration is None:
            return []
        self._engine = _Engine(calibration)
        self._calibrated_at_s = sample.t_s
        return replay(self._warm_up.drain(), self._engine.step, sample.t_s)


class _Engine:
    """The per-sample state machine for one calibrated sensor."""

    def __init__(self, calibration: GaitCalibration) -> None:
        self._axis = calibration.axis
        self._swing_peak_dps = calibration.swing_peak_dps
        self._push_off_dps = calibration.push_off_peak_dps
        self._impact_mps2 = calibration.impact_mps2
        self._stride_s = calibration.stride_s
        self._stance_s = DEFAULT_STANCE_FRACTION * calibration.stride_s
        # Second moments of the moving angular velocity, for following the axis.
        self._moments = [0.0] * 6
        self._phase = _Phase.STANCE
        self._t_last_ic_s = -math.inf
        self._t_last_s = -math.inf
        self._last_w_dps = 0.0
        self._dip_dps = 0.0
        self._t_dip_s = 0.0
        self._heel_off_sent = False
        self._t_toe_off_s = 0.0
        self._peak_dps = 0.0
        self._t_peak_s = 0.0
        self._mid_swing_sent = False
        self._t_reversal_s = 0.0
        self._impact_peak_mps2 = 0.0
        self._t_impact_s = 0.0
        self._still_since_s: float | None = None
        self._still_sent = False

    def calibration(self) -> GaitCalibration:
        return GaitCalibration(
            self._axis, self._swing_peak_dps, self._push_off_dps, self._impact_mps2, self._stride_s
        )

    def step(self, sample: Sample) -> list[GaitEvent]:
        t = sample.t_s
        gx, gy, gz = sample.gyro_dps
        ax, ay, az = self._axis
        w = gx * ax + gy * ay + gz * az
        speed2 = gx * gx + gy * gy + gz * gz
        events: list[GaitEvent] = []
        if speed2 > MOVING_DPS * MOVING_DPS:
            m = self._moments
            m[0] += gx * gx
            m[1] += gy * gy
            m[2] += gz * gz
            m[3] += gx * gy
            m[4] += gx * gz
            m[5] += gy * gz
        self._watch_still(t, speed2, events)
        phase = self._phase
        if phase is _Phase.STANCE:
            self._stance(t, w, events)
        elif phase is _Phase.SWING:
            self._swing(t, w)
            if self._phase is _Phase.SWING and not self._mid_swing_sent:
                self._mid_swing(t, w, events)
        else:
            fx, fy, fz = sample.acc_mps2
            self._impact(t, math.sqrt(fx * fx + fy * fy + fz * fz), events)
        self._last_w_dps = w
        self._t_last_s = t
        return events

    def _stance(self, t: float, w: float, events: list[GaitEvent]) -> None:
        dip_deep = self._dip_dps < -TOE_OFF_DEPTH_FRACTION * self._push_off_dps
        if dip_deep and w > TOE_OFF_REBOUND_FRACTION * self._dip_dps:
            events.append(self._event(GaitEventKind.TOE_OFF, self._t_dip_s, t))
            self._learn_stance(self._t_dip_s - self._t_last_ic_s)
            self._start_swing(self._t_dip_s, w)
            return
        if w > SWING_FRACTION * self._swing_peak_dps:
            # A swing with no toe-off seen (turn, shuffle): follow it silently so that
            # the heel strike ending it is found and the phase is right again.
            self._start_swing(t, w)
            return
        if t - self._t_last_ic_s < STANCE_REFRACTORY_FRACTION * self._stride_s:
            return
        if w >= 0.0:
            self._dip_dps = 0.0
            return
        level = -HEEL_OFF_FRACTION * self._push_off_dps
        if not self._heel_off_sent and w < level:
            self._heel_off(t, self._crossing(t, w, level), events)
        if w < self._dip_dps:
            self._dip_dps = w
            self._t_dip_s = t

    def _heel_off(self, t: float, t_crossed_s: float, events: list[GaitEvent]) -> None:
        """Heel-off, at most once per stance and only in its late part.

        The heel lifts as the push-off rotation begins, so the threshold sits low, just
        clear of foot-flat wobble. That alone would fire in mid-stance on a shank, which
        rotates steadily over the planted foot, and twice where the rotation pauses. So a
        stance gives one heel-off, never earlier than ``HEEL_OFF_LEAD_FRACTION`` of a
        stride before the toe-off its learned stance time predicts, and only in a stance
        that began with a heel strike: the first step from standing has no stance start
        to time it from and is opened by its toe-off instead.
        """
        if self._t_last_ic_s == -math.inf:
            return
        opens_s = self._t_last_ic_s + self._stance_s - HEEL_OFF_LEAD_FRACTION * self._stride_s
        if t < opens_s:
            return
        self._heel_off_sent = True
        events.append(self._event(GaitEventKind.HEEL_OFF, max(t_crossed_s, opens_s), t))

    def _learn_stance(self, stance_s: float) -> None:
        """Follow the heel-strike-to-toe-off time, ignoring strides with a missed event."""
        low, high = STANCE_RANGE_FRACTION
        if low * self._stride_s < stance_s < high * self._stride_s:
            self._stance_s += ADAPT_RATE * (stance_s - self._stance_s)

    def _start_swing(self, t_start: float, w: float) -> None:
        self._phase = _Phase.SWING
        self._t_toe_off_s = t_start
        self._peak_dps = w
        self._t_peak_s = t_start
        self._mid_swing_sent = False

    def _swing(self, t: float, w: float) -> None:
        if w > self._peak_dps:
            self._peak_dps = w
            self._t_peak_s = t
        swung = self._peak_dps > SWING_FRACTION * self._swing_peak_dps
        if not swung and w < self._dip_dps:
            # Deeper than the dip taken for toe-off: that one was early; keep looking.
            self._phase = _Phase.STANCE
            self._dip_dps = w
            self._t_dip_s = t
        elif swung and w < 0.0:
            self._phase = _Phase.IMPACT
            self._t_reversal_s = self._crossing(t, w, 0.0)
            self._impact_peak_mps2 = 0.0
            self._t_impact_s = t
        elif t - self._t_toe_off_s > SWING_TIMEOUT_FRACTION * self._stride_s:
            self._back_to_stance()

    def _mid_swing(self, t: float, w: float, events: list[GaitEvent]) -> None:
        if (
            self._peak_dps > SWING_FRACTION * self._swing_peak_dps
            and w < MID_SWING_DROP_FRACTION * self._peak_dps
        ):
            self._mid_swing_sent = True
            events.append(self._event(GaitEventKind.MID_SWING, self._t_peak_s, t))

    def _impact(self, t: float, acc_norm_mps2: float, events: list[GaitEvent]) -> None:
        if acc_norm_mps2 > self._impact_peak_mps2:
            self._impact_peak_mps2 = acc_norm_mps2
            self._t_impact_s = t
        threshold = max(IMPACT_MIN_MPS2, IMPACT_FRACTION * self._impact_mps2)
        found = self._impact_peak_mps2 >= threshold
        if found and t - self._t_impact_s >= IMPACT_CONFIRM_S:
            self._heel_strike(self._t_impact_s, t, events)
        elif t - self._t_reversal_s >= IMPACT_SEARCH_S:
            self._heel_strike(self._t_impact_s if found else self._t_reversal_s, t, events)

    def _heel_strike(self, t_event: float, t: float, events: list[GaitEvent]) -> None:
        events.append(self._event(GaitEventKind.HEEL_STRIKE, t_event, t))
        stride_s = t_event - self._t_last_ic_s
        if 0.5 * self._stride_s < stride_s < 2.0 * self._stride_s:
            self._stride_s += ADAPT_RATE * (stride_s - self._stride_s)
        self._swing_peak_dps += ADAPT_RATE * (self._peak_dps - self._swing_peak_dps)
        self._push_off_dps += ADAPT_RATE * (-self._dip_dps - self._push_off_dps)
        self._impact_mps2 += ADAPT_RATE * (self._impact_peak_mps2 - self._impact_mps2)
        self._t_last_ic_s = t_event
        self._follow_axis()
        self._back_to_stance()

    def _back_to_stance(self) -> None:
        self._phase = _Phase.STANCE
        self._dip_dps = 0.0
        self._heel_off_sent = False

    def _follow_axis(self) -> None:
        """One power-iteration step on the moving-rotation moments, once per stride.

        Starting from the current axis keeps its sign, and one step per stride is enough to
        follow a sensor that slips slowly on the limb.
        """
        mxx, myy, mzz, mxy, mxz, myz = self._moments
        x, y, z = self._axis
        nx = mxx * x + mxy * y + mxz * z
        ny = mxy * x + myy * y + myz * z
        nz = mxz * x + myz * y + mzz * z
        norm = math.sqrt(nx * nx + ny * ny + nz * nz)
        if norm > 0.0:
            self._axis = (nx / norm, ny / norm, nz / norm)
        self._moments = [m * AXIS_FORGET for m in self._moments]

    def _watch_still(self, t: float, speed2: float, events: list[GaitEvent]) -> None:
        if speed2 > STILL_DPS * STILL_DPS:
            self._still_since_s = None
            self._still_sent = False
            return
        if self._still_since_s is None:
            self._still_since_s = t
        elif not self._still_sent and t - self._still_since_s >= max(
            STILL_MIN_S, STILL_STRIDE_FRACTION * self._stride_s
        ):
            self._still_sent = True
            events.append(self._event(GaitEventKind.STILL, self._still_since_s, t))
            self._t_last_ic_s = -math.inf
            self._back_to_stance()

    def _crossing(self, t: float, w: float, level: float) -> float:
        """When ``w`` crossed ``level`` between the previous sample and this one."""
        previous = self._last_w_dps
        if previous == w or self._t_last_s == -math.inf:
            return t
        fraction = (level - previous) / (w - previous)
        return self._t_last_s + min(1.0, max(0.0, fraction)) * (t - self._t_last_s)

    @staticmethod
    def _event(kind: GaitEventKind, t_event: float, t: float) -> GaitEvent:
        return GaitEvent(kind, min(t_event, t), t)
