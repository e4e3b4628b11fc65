"""Online gait events from the sagittal angular velocity and the heel-strike impact.

One stride seen on the calibrated sagittal rate ``w`` (positive = swing rotation), for a
foot- or a shank-worn sensor alike:

    stance ... w dips negative (push-off / pre-swing) ... w swings up through zero to the
    swing peak ... w falls back through zero (terminal-swing reversal) ... impact

* HEEL_OFF: the push-off rotation passes a tenth of its calibrated peak, once per stance
  and only in its last part (judged from the learned stance and stride times).
* TOE_OFF: the bottom of that dip (foot: the push-off peak; shank: the pre-swing minimum),
  emitted as soon as ``w`` has come back halfway, which is a few samples later.
  A swing that rises with no such dip (a turn, a weak first step) opens with a late
  TOE_OFF at its upward crossing: a swing is never left unstimulated for want of a dip.
* MID_SWING: the swing peak, once ``w`` has dropped clearly below it.
* HEEL_STRIKE: the first acceleration-norm impact peak that follows the terminal-swing
  reversal (or, in a pivot step with no reversal, any impact after the swing peak); the
  reversal itself when no impact shows up (soft landing, shuffling).
* STEP_END: an open step that found no heel strike (no toe-off after a heel-off, a swing
  that ran out of time, the limb still mid-step), so its output stops at once instead of
  running into stance.
* STILL: no rotation for longer than a stance phase lasts.

Every threshold is a fraction of a calibrated magnitude or of the stride time. The
magnitudes start from a stored calibration or from typical adult values and every stride
moves them (a running mean over the first strides, exponential averaging after), so the
detector follows the walker without per-recording constants and without a warm-up. A
stance refractory period, a fraction of the stride, keeps the foot-flat rotation after
heel strike from passing for a push-off.

Per-sample work is float arithmetic on a fixed set of attributes; the axis is kept by :class:`controller.detect.axis_watch.AxisWatch`.
"""

from __future__ import annotations

import math
from enum import Enum

from controller.detect.axis_watch import AxisWatch
from controller.detect.calibration import (
    IMPACT_MIN_MPS2,
    GaitCalibration,
    Placement,
    typical_calibration,
)
from controller.types import GaitEvent, GaitEventKind, Sample

HEEL_OFF_FRACTION = 0.1
"""Push-off rotation past this fraction of its calibrated peak is heel-off."""
HEEL_OFF_LEAD_FRACTION = 0.2
"""Heel-off comes at most this fraction of a stride before toe-off (healthy: ~0.15-0.2)."""
HEEL_OFF_WINDOW_FRACTION = 0.4
"""How long after it opens (a fraction of the stride) a stance still takes a heel-off."""
DEFAULT_STANCE_FRACTION = 0.6
"""Stance time assumed, as a fraction of the stride, until toe-offs have been seen."""
STANCE_RANGE_FRACTION = (0.3, 0.9)
TOE_OFF_DEPTH_FRACTION = 0.4
"""The dip before swing must reach this fraction of the calibrated push-off peak."""
TOE_OFF_REBOUND_FRACTION = 0.5
SWING_FRACTION = 0.4
"""A swing must reach this fraction of the calibrated swing peak to count."""
RISE_CONFIRM_S = 0.0
"""A swing seen without its push-off dip must last this long beyond its first sample above
the level. One more sample is enough to pass over an impact's one-sample jolt; waiting
longer (20 ms was tried) loses the short swings of turns and first steps."""
MID_SWING_DROP_FRACTION = 0.7
IMPACT_FRACTION = 0.6
IMPACT_SEARCH_S = 0.15
"""How long after the terminal-swing reversal the impact may come."""
IMPACT_CONFIRM_S = 0.05
"""A peak with no higher value for this long is the impact."""
PEAK_DROP = 0.8
STANCE_REFRACTORY_FRACTION = 0.3
SWING_TIMEOUT_FRACTION = 0.6
"""A swing lasts about 0.4 of a stride; one with no heel strike by 0.6 is closed."""
HEEL_OFF_TIMEOUT_FRACTION = 0.4
"""Heel-off comes about 0.2 of a stride before toe-off; twice that with no toe-off ends it."""
STEP_STILL_S = 0.15
"""A limb this still in an open step is on the ground: the step is closed."""
STILL_DPS = 20.0
STILL_MIN_S = 0.5
STILL_STRIDE_FRACTION = 0.75
"""Stillness must outlast a stance phase, else every foot-flat would be a stop."""
ADAPT_RATE = 0.2
SETTLED_LEARNING = 4
"""A stored calibration counts as this many strides seen: it is refined at ``ADAPT_RATE``."""


class _Phase(Enum):
    STANCE = 1
    SWING = 2
    IMPACT = 3


class GyroGaitDetector:
    """The gyroscope gait detector (a ``GaitDetector``).

    It detects from the first step. With a stored ``calibration`` it starts from that
    (checked against the walk stride by stride: see :mod:`controller.detect.axis_watch`);
    without one it starts from typical adult values for its ``placement`` and takes the
    axis from the limb's first movement. Either way every stride refines the magnitudes a
    little, so no calibration work ever runs as a batch inside a control tick.
    """

    def __init__(self, calibration: GaitCalibration | None = None,
                 placement: Placement = "foot") -> None:
        self._initial = calibration
        self._placement = placement
        self._engine = self._engine_from(calibration)

    @property
    def calibration(self) -> GaitCalibration | None:
        """The calibration in use, including what walking has taught it since (None
        before the limb has moved)."""
        return self._engine.calibration()

    def drain_notes(self) -> list[str]:
        """What the detector changed about its calibration since last asked, in words."""
        notes = self._engine.watch.notes
        self._engine.watch.notes = []
        return notes

    def reset(self) -> None:
        """Forget the walk; a calibration given or learned is kept (the mounting is)."""
        self._engine = self._engine_from(self._engine.calibration() or self._initial)

    def _engine_from(self, kept: GaitCalibration | None) -> _Engine:
        if kept is not None:
            return _Engine(kept, stored=True)
        return _Engine(typical_calibration(self._placement), stored=False)

    def update(self, sample: Sample) -> list[GaitEvent]:
        return self._engine.step(sample)


class _Engine:
    """The per-sample state machine for one sensor."""

    def __init__(self, calibration: GaitCalibration, stored: bool) -> None:
        self.watch = AxisWatch(calibration.axis if stored else None, calibration.impact_mps2,
                               stored, calibration.push_off_peak_dps)
        self._swing_peak_dps = calibration.swing_peak_dps
        self._push_off_dps = calibration.push_off_peak_dps
        self._impact_mps2 = calibration.impact_mps2
        self._stride_s = calibration.stride_s
        self._stance_s = DEFAULT_STANCE_FRACTION * calibration.stride_s
        self._strides_learned = SETTLED_LEARNING if stored else 1
        self._phase = _Phase.STANCE
        self._t_last_ic_s = -math.inf
        self._t_last_s = -math.inf
        self._last_w_dps = 0.0
        self._dip_dps = 0.0
        self._t_dip_s = 0.0
        self._heel_off_sent = False
        self._heel_off_skipped = False
        self._t_rise_s: float | None = None
        self._t_heel_off_s = 0.0
        self._t_toe_off_s = 0.0
        self._peak_dps = 0.0
        self._t_peak_s = 0.0
        self._mid_swing_sent = False
        self._t_reversal_s = 0.0
        self._impact_peak_mps2 = 0.0
        self._t_impact_s = 0.0
        self._still_since_s: float | None = None
        self._still_sent = False
        self._step_still_sent = False

    def calibration(self) -> GaitCalibration | None:
        axis = self.watch.axis
        if axis is None:
            return None
        return GaitCalibration(axis, self._swing_peak_dps, self._push_off_dps,
                               self._impact_mps2, self._stride_s)

    def step(self, sample: Sample) -> list[GaitEvent]:
        t = sample.t_s
        gx, gy, gz = sample.gyro_dps
        fx, fy, fz = sample.acc_mps2
        acc_norm = math.sqrt(fx * fx + fy * fy + fz * fz)
        watch = self.watch
        watch.feed(t, sample.gyro_dps, acc_norm)
        events: list[GaitEvent] = []
        axis = watch.axis
        if axis is None:
            self._t_last_s = t
            return events
        if watch.flipped:
            watch.flipped = False
            self._swing_peak_dps, self._push_off_dps = self._push_off_dps, self._swing_peak_dps
            self._close_step(t, events)
        ax, ay, az = axis
        w = gx * ax + gy * ay + gz * az
        self._watch_still(t, watch.speed_dps, events)
        phase = self._phase
        if phase is _Phase.STANCE:
            self._stance(t, w, events)
            if self._heel_off_sent and self._phase is _Phase.STANCE:
                self._heel_off_unanswered(t, events)
        elif phase is _Phase.SWING:
            self._swing(t, w, acc_norm, events)
            if self._phase is _Phase.SWING and not self._mid_swing_sent:
                self._mid_swing(t, w, events)
        else:
            self._impact(t, acc_norm, events)
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
        if t - self._t_last_ic_s < STANCE_REFRACTORY_FRACTION * self._stride_s:
            return  # early stance: the rotation of the foot settling, never a swing
        if w > SWING_FRACTION * self._swing_peak_dps:
            # A swing with no push-off dip seen (a turn, a shuffle, a weak first step): it
            # still needs the foot lifted, so once it has lasted long enough not to be an
            # impact's jolt it opens the step, late, at its upward crossing.
            if self._t_rise_s is None:
                self._t_rise_s = self._crossing_up_s(t, w)
            elif t - self._t_rise_s >= RISE_CONFIRM_S:
                events.append(self._event(GaitEventKind.TOE_OFF, self._t_rise_s, t))
                self._start_swing(t, w)
            return
        self._t_rise_s = None
        if w >= 0.0:
            self._dip_dps = 0.0
            return
        level = -HEEL_OFF_FRACTION * self._push_off_dps
        if not (self._heel_off_sent or self._heel_off_skipped) and w < level:
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
        to time it from and is opened by its toe-off instead. Nor later than
        ``HEEL_OFF_WINDOW_FRACTION`` of a stride after it could first come: a heel rising
        that late belongs to someone standing, not walking.
        """
        if self._t_last_ic_s == -math.inf:
            return
        opens_s = self._t_last_ic_s + self._stance_s - HEEL_OFF_LEAD_FRACTION * self._stride_s
        if t < opens_s:
            return
        if t > opens_s + HEEL_OFF_WINDOW_FRACTION * self._stride_s:
            # Far later than the walk's rhythm says: the walker has stopped and shifts
            # weight. A real step that follows still opens with its toe-off.
            self._heel_off_skipped = True
            return
        self._heel_off_sent = True
        self._t_heel_off_s = max(t_crossed_s, opens_s)
        events.append(self._event(GaitEventKind.HEEL_OFF, self._t_heel_off_s, t))

    def _heel_off_unanswered(self, t: float, events: list[GaitEvent]) -> None:
        """A heel-off with no toe-off in time (the heel rose and came down, the foot
        pivoted, the walk ended) closes its step rather than stimulate into stance."""
        if t - self._t_heel_off_s > HEEL_OFF_TIMEOUT_FRACTION * self._stride_s:
            self._close_step(t, events)

    def _learn_stance(self, stance_s: float) -> None:
        """Follow the heel-strike-to-toe-off time, ignoring strides with a missed event."""
        low, high = STANCE_RANGE_FRACTION
        if low * self._stride_s < stance_s < high * self._stride_s:
            self._stance_s += ADAPT_RATE * (stance_s - self._stance_s)

    def _start_swing(self, t_start: float, w: float) -> None:
        self._phase = _Phase.SWING
        self._t_rise_s = None
        self._t_toe_off_s = t_start
        self._peak_dps = w
        self._t_peak_s = t_start
        self._mid_swing_sent = False

    def _swing(self, t: float, w: float, acc_norm: float, events: list[GaitEvent]) -> None:
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
            self._enter_impact(self._crossing(t, w, 0.0), t)
        elif not swung and acc_norm > self._impact_threshold() and t > self._t_peak_s:
            # A weak swing (a pivot step) that lands without a clear reversal: the impact
            # closes it. (A full swing's own acceleration can pass the threshold.)
            self._enter_impact(t, t)
        elif t - self._t_toe_off_s > SWING_TIMEOUT_FRACTION * self._stride_s:
            self._close_step(t, events)

    def _enter_impact(self, t_reversal_s: float, t: float) -> None:
        self._phase = _Phase.IMPACT
        self._t_reversal_s = t_reversal_s
        self._impact_peak_mps2 = 0.0
        self._t_impact_s = t

    def _mid_swing(self, t: float, w: float, events: list[GaitEvent]) -> None:
        if (
            self._peak_dps > SWING_FRACTION * self._swing_peak_dps
            and w < MID_SWING_DROP_FRACTION * self._peak_dps
        ):
            self._mid_swing_sent = True
            events.append(self._event(GaitEventKind.MID_SWING, self._t_peak_s, t))

    def _impact_threshold(self) -> float:
        return max(IMPACT_MIN_MPS2, IMPACT_FRACTION * self._impact_mps2)

    def _impact(self, t: float, acc_norm_mps2: float, events: list[GaitEvent]) -> None:
        """The heel strike is the first impact peak after the reversal, not the largest.

        The heel's contact makes the first peak; a forefoot slap or a heavy shoe can make a
        later, larger one 20-60 ms on, and taking that spreads the timing. A peak is known
        once the norm falls back below ``PEAK_DROP`` of it (a sample or two), or after
        ``IMPACT_CONFIRM_S``.
        """
        if acc_norm_mps2 > self._impact_peak_mps2:
            self._impact_peak_mps2 = acc_norm_mps2
            self._t_impact_s = t
        found = self._impact_peak_mps2 >= self._impact_threshold()
        if found and (acc_norm_mps2 < PEAK_DROP * self._impact_peak_mps2
                      or t - self._t_impact_s >= IMPACT_CONFIRM_S):
            self._heel_strike(self._t_impact_s, t, events)
        elif t - self._t_reversal_s >= IMPACT_SEARCH_S:
            self._heel_strike(self._t_impact_s if found else self._t_reversal_s, t, events)

    def _learning_rate(self) -> float:
        """Fast at first (a running mean over the strides seen), then exponential."""
        return max(ADAPT_RATE, 1.0 / (self._strides_learned + 1))

    def _heel_strike(self, t_event: float, t: float, events: list[GaitEvent]) -> None:
        events.append(self._event(GaitEventKind.HEEL_STRIKE, t_event, t))
        rate = self._learning_rate()
        stride_s = t_event - self._t_last_ic_s
        if 0.5 * self._stride_s < stride_s < 2.0 * self._stride_s:
            self._stride_s += rate * (stride_s - self._stride_s)
        if self._peak_dps > SWING_FRACTION * self._swing_peak_dps:
            self._swing_peak_dps += rate * (self._peak_dps - self._swing_peak_dps)
            if self._dip_dps < 0.0:
                self._push_off_dps += rate * (-self._dip_dps - self._push_off_dps)
            if self._impact_peak_mps2 > IMPACT_MIN_MPS2:
                self._impact_mps2 += rate * (self._impact_peak_mps2 - self._impact_mps2)
            self._strides_learned += 1
        self._t_last_ic_s = t_event
        self._back_to_stance()

    def _close_step(self, t: float, events: list[GaitEvent]) -> None:
        """End an open step that found no heel strike, so its output stops now."""
        if self._step_open:
            events.append(self._event(GaitEventKind.STEP_END, t, t))
        self._back_to_stance()

    @property
    def _step_open(self) -> bool:
        """A step has begun (heel-off sent, or past toe-off) and has not closed."""
        return self._phase is not _Phase.STANCE or self._heel_off_sent

    def _back_to_stance(self) -> None:
        self._phase = _Phase.STANCE
        self._dip_dps = 0.0
        self._heel_off_sent = self._heel_off_skipped = False

    def _watch_still(self, t: float, speed_dps: float, events: list[GaitEvent]) -> None:
        if speed_dps > STILL_DPS:
            self._still_since_s = None
            self._still_sent = self._step_still_sent = False
            return
        if self._still_since_s is None:
            self._still_since_s = t
            return
        still_s = t - self._still_since_s
        if self._step_open and not self._step_still_sent and still_s >= STEP_STILL_S \
                and self._phase is not _Phase.IMPACT:
            # A foot that stops rotating mid-step has landed (or never left): close it.
            self._step_still_sent = True
            self._close_step(t, events)
        elif not self._still_sent and still_s >= max(
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

    def _crossing_up_s(self, t: float, w: float) -> float:
        """Roughly when a rising ``w`` left zero (linear back-extrapolation, one step)."""
        slope = (w - self._last_w_dps) / max(t - self._t_last_s, 1e-6)
        return max(self._t_last_s, t - w / slope) if slope > 0 else t

    @staticmethod
    def _event(kind: GaitEventKind, t_event: float, t: float) -> GaitEvent:
        return GaitEvent(kind, min(t_event, t), t)
