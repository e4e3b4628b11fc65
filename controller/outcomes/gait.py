"""Per-stride gait outcome measures, and stimulated strides against unstimulated ones.

A stride runs from one heel strike to the next of the same foot. It is measured from the
samples and the heel strikes and toe-offs the controller detected (the session record's
``events``), so it has to survive a missed or an extra event. A stride is kept only when it
has the shape of one:

    heel strike, stance with a still (foot-flat) period, toe-off, swing with no still
    period, heel strike, still again soon after

A missed heel strike leaves a stance (or, where foot-flat is brief, too long a swing)
inside the stride, a missed toe-off leaves no toe-off after foot-flat: both are dropped.
Of several toe-offs the first after foot-flat is taken. Strides outside
:data:`STRIDE_RANGE_S` (turns, stops) are dropped.

The sensor's sagittal axis and its sign come from the walk
(:func:`controller.detect.calibration.sagittal_axis`), never from the mounting. Pitch and
toe height come from :mod:`controller.outcomes.strapdown`, integrated from one foot-flat to
the next. The heel-strike angle is taken at the heel strike that *ends* the stride's swing:
that contact is the one stimulation in the swing acts on.

On the shank there is no foot-flat: the stillest moment of stance stands in for it, the
angles are the shank's own pitch (the foot is not seen) and toe clearance is None.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np

from controller.detect.calibration import STRIDE_RANGE_S, sagittal_axis
from controller.outcomes.strapdown import StrideMotion, integrate_stride, toe_lever_m
from controller.scoring.turns import runs
from controller.types import GRAVITY_MPS2

STILL_DPS = 50.0
"""Foot-flat: over ``FLAT_WINDOW_S`` the foot turns slower than this on average (walk 1's
quietest stance reaches 2-6 °/s, walk 2's only 10-33 °/s) ..."""
STILL_ACC_MPS2 = 1.5
"""... and its acceleration norm stays this close to 1 g (allows a few % scale error)."""
FLAT_WINDOW_S = 0.05
"""The foot-flat the stride is integrated from: the quietest window of this length."""
SWING_STILL_S = 0.1
"""A still period this long inside a swing is a stance: a heel strike was missed."""
MAX_SWING_FRACTION = 0.65
"""A longer "swing" spans a missed heel strike (healthy 0.38-0.40, foot drop rarely > 0.5)."""
NEXT_FLAT_FRACTION = 0.6
"""The foot-flat after a stride is looked for this fraction of a stride past its heel strike."""
PUSH_OFF_DPS = 100.0
"""Toe-down rotation faster than this, after foot-flat and before toe-off, is push-off ..."""
FOREFOOT_FLAT_DEG = 20.0
"""... and the forefoot stays flat on the floor until the foot has pitched this far down."""


@dataclass(frozen=True)
class StepMeasures:
    """One stride's outcome measures (angles in degrees, positive = toe up)."""

    heel_strike_s: float
    """The heel strike that starts the stride."""
    stride_time_s: float
    cadence_spm: float
    swing_fraction: float
    peak_dorsiflexion_deg: float
    """Highest toe-up pitch in swing, relative to the foot-flat of this stride's stance."""
    heel_strike_angle_deg: float
    """Pitch at the heel strike that ends the swing (positive: heel-first contact)."""
    min_toe_clearance_m: float | None
    """Toe height at its mid-swing minimum above its foot-flat height (foot only)."""
    stimulated: bool


@dataclass(frozen=True)
class _Stride:
    start_s: float
    toe_off_s: float
    end_s: float
    first_flat: slice
    next_flat: slice


def step_measures(t_s: np.ndarray, acc_mps2: np.ndarray, gyro_dps: np.ndarray,
                  heel_strikes_s: Sequence[float], toe_offs_s: Sequence[float], *,
                  placement: Literal["foot", "shank"],
                  stimulated_s: Sequence[tuple[float, float]] = ()) -> list[StepMeasures]:
    """Measures of every stride that has the shape of one (see the module docstring).

    ``stimulated_s`` holds the (start, end) of stimulation bursts; a stride is stimulated
    when one overlaps its swing. Raises ``CalibrationError`` when the walk has too few
    heel strikes to find the sagittal axis from.
    """
    t_s = np.asarray(t_s, dtype=float)
    acc_mps2, gyro_dps = np.asarray(acc_mps2, dtype=float), np.asarray(gyro_dps, dtype=float)
    strikes = sorted(heel_strikes_s)
    period_s = float(np.median(np.diff(t_s)))
    axis = sagittal_axis(gyro_dps, [int(i) for i in np.searchsorted(t_s, strikes)], period_s)
    finder = _FlatFinder(t_s, acc_mps2, gyro_dps, period_s, strict=placement == "foot")
    toe_offs = sorted(toe_offs_s)
    strides = [s for a, b in itertools.pairwise(strikes)
               if (s := finder.stride(a, b, toe_offs)) is not None]
    motions = [integrate_stride(t_s, acc_mps2, gyro_dps, axis, s.first_flat, s.next_flat,
                                zero_velocity=placement == "foot") for s in strides]
    lever_m = toe_lever_m(
        [(m, _forefoot_rocker(s, m, axis), s.toe_off_s)
         for s, m in zip(strides, motions, strict=True)]) if placement == "foot" else None
    return [_measures(s, m, lever_m, stimulated_s)
            for s, m in zip(strides, motions, strict=True)]


def mid_swing_minimum(height_m: np.ndarray) -> float | None:
    """The local minimum of a toe-height curve over one swing between its two maxima
    (after toe-off and before heel strike), or None when the curve has no such dip."""
    n = len(height_m)
    if n < 5:
        return None
    first = int(np.argmax(height_m[: n // 2]))
    second = first + int(np.argmax(height_m[first:]))
    low = first + int(np.argmin(height_m[first : second + 1]))
    return None if low in (first, second) else float(height_m[low])


class _FlatFinder:
    """Foot-flat periods, and strides checked against the shape of one."""

    def __init__(self, t_s: np.ndarray, acc_mps2: np.ndarray, gyro_dps: np.ndarray,
                 period_s: float, strict: bool) -> None:
        window = np.ones(max(1, round(FLAT_WINDOW_S / period_s)))
        window /= window.size
        self.speed_dps = np.convolve(np.linalg.norm(gyro_dps, axis=1), window, mode="same")
        off_g_mps2 = np.abs(np.linalg.norm(acc_mps2, axis=1) - GRAVITY_MPS2)
        self.still = (self.speed_dps < STILL_DPS) & (
            np.convolve(off_g_mps2, window, mode="same") < STILL_ACC_MPS2)
        self.t_s, self.strict, self.half = t_s, strict, window.size // 2
        self.swing_still = max(1, math.ceil(SWING_STILL_S / period_s))

    def flat(self, from_s: float, to_s: float) -> tuple[slice, float] | None:
        """The quietest window of the first still period between two times, and the end
        of that period; off the foot (never still), the quietest window there is."""
        lo, hi = (int(i) for i in np.searchsorted(self.t_s, [from_s, to_s]))
        found = runs(self.still[lo:hi])
        if found:
            lo, hi = lo + found[0][0], lo + found[0][1]
        elif self.strict or hi - lo < 1:
            return None
        i = lo + int(np.argmin(self.speed_dps[lo:hi]))
        window = slice(max(0, i - self.half), min(len(self.t_s), i + self.half + 1))
        return window, float(self.t_s[max(hi, window.stop) - 1])

    def stride(self, start_s: float, end_s: float, toe_offs_s: Sequence[float]) -> _Stride | None:
        stride_s = end_s - start_s
        if not STRIDE_RANGE_S[0] <= stride_s <= STRIDE_RANGE_S[1]:
            return None
        first = self.flat(start_s, end_s)
        if first is None or self._stance_in(first[1], end_s):
            return None
        toe_off_s = next((t for t in toe_offs_s if first[1] < t < end_s), None)
        if toe_off_s is None or (end_s - toe_off_s) / stride_s > MAX_SWING_FRACTION:
            return None
        after = self.flat(end_s, end_s + NEXT_FLAT_FRACTION * stride_s)
        if after is None:
            return None
        return _Stride(start_s, toe_off_s, end_s, first[0], after[0])

    def _stance_in(self, from_s: float, to_s: float) -> bool:
        """Is the foot still long enough between two times for a stance?"""
        lo, hi = np.searchsorted(self.t_s, [from_s, to_s])
        return any(b - a >= self.swing_still for a, b in runs(self.still[lo:hi]))


def _forefoot_rocker(stride: _Stride, motion: StrideMotion, axis: np.ndarray) -> np.ndarray:
    """Samples of push-off with the forefoot flat on the floor (the foot turns about it).
    The motion starts at foot-flat, after the heel rocker of the stride's own heel strike."""
    return np.asarray((motion.t_s < stride.toe_off_s)
                      & (motion.gyro_dps @ axis < -PUSH_OFF_DPS)
                      & (motion.pitch_deg() > -FOREFOOT_FLAT_DEG))


def _measures(stride: _Stride, motion: StrideMotion, lever_m: np.ndarray | None,
              stimulated_s: Sequence[tuple[float, float]]) -> StepMeasures:
    pitch_deg = motion.pitch_deg()
    swing = (motion.t_s >= stride.toe_off_s) & (motion.t_s <= stride.end_s)
    clearance_m = None
    if lever_m is not None and motion.position_m is not None:
        clearance_m = mid_swing_minimum(motion.height_m(lever_m)[swing])
    stride_s = stride.end_s - stride.start_s
    return StepMeasures(
        heel_strike_s=stride.start_s,
        stride_time_s=stride_s,
        cadence_spm=120.0 / stride_s,
        swing_fraction=(stride.end_s - stride.toe_off_s) / stride_s,
        peak_dorsiflexion_deg=float(pitch_deg[swing].max()),
        heel_strike_angle_deg=float(np.interp(stride.end_s, motion.t_s, pitch_deg)),
        min_toe_clearance_m=clearance_m,
        stimulated=any(a < stride.end_s and b > stride.toe_off_s for a, b in stimulated_s),
    )


@dataclass(frozen=True)
class BoutSummary:
    """One measure over a group of strides: how many had it, its median and quartiles."""

    count: int
    median: float
    q25: float
    q75: float

    @classmethod
    def of(cls, values: Sequence[float]) -> BoutSummary:
        if not values:
            return cls(0, math.nan, math.nan, math.nan)
        q25, median, q75 = (float(q) for q in np.percentile(values, [25, 50, 75]))
        return cls(len(values), median, q25, q75)

    @property
    def iqr(self) -> float:
        return self.q75 - self.q25


@dataclass(frozen=True)
class BoutComparison:
    """One measure on stimulated and on unstimulated strides (the orthotic effect)."""

    stimulated: BoutSummary
    unstimulated: BoutSummary

    @property
    def effect(self) -> float:
        """Median stimulated minus median unstimulated (NaN if a group is empty)."""
        return self.stimulated.median - self.unstimulated.median


MEASURES = tuple(f.name for f in fields(StepMeasures)
                 if f.name not in ("heel_strike_s", "stimulated"))


def compare_stimulated(measures: Sequence[StepMeasures]) -> dict[str, BoutComparison]:
    """Every measure, stimulated strides against unstimulated ones; strides where a
    measure is None (toe clearance on the shank) are left out of its counts."""

    def summary(name: str, stimulated: bool) -> BoutSummary:
        values = [getattr(m, name) for m in measures if m.stimulated is stimulated]
        return BoutSummary.of([v for v in values if v is not None])

    return {name: BoutComparison(summary(name, True), summary(name, False))
            for name in MEASURES}
