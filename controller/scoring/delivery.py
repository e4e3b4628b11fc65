"""What a walking patient got: stimulation measured against every swing of a recorded walk.

Events found are not the point; a foot lifted in every swing is. So the swings here are
all of them, the first steps, the turns and the last step included, and the output is
what the session record says the stimulator delivered.

The motion-capture reference covers only part of a walk (the README of the shared data
names the annotated windows), so the swings come from an offline reading of the whole
recording, with the reference's own times substituted wherever it has them:

* the sagittal axis and its sign from :func:`controller.detect.calibration.calibrate` on
  the whole walk (the offline calibration, not the online detector under test);
* a swing is a lobe of positive sagittal rotation reaching ``SWING_PEAK_FRACTION`` of the
  walk's median swing peak; toe-off is the push-off peak before it (within 5 ms of the
  reference toe-off on the shared walks), heel strike the impact after its reversal;
* a reference toe-off or heel strike within ``REFERENCE_MATCH_S`` replaces the offline one.

A burst "starts in the first half of a stance" when it begins between a heel strike and
the middle of the stance that follows; where the walker stopped (the foot down more than
``STOP_FACTOR`` typical stances), the middle of a typical stance is used instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

import numpy as np

from controller.detect.calibration import IMPACT_MIN_MPS2, calibrate
from controller.devices.recording import Recording
from controller.scoring.turns import runs
from controller.types import GaitEventKind

SWING_PEAK_FRACTION = 0.35
MIN_SWING_S = 0.15
PUSH_OFF_SEARCH_S = 0.3
IMPACT_SEARCH_S = 0.15
REFERENCE_MATCH_S = 0.1
STOP_FACTOR = 2.0
"""A stance longer than this many typical stances is a stop, judged as a typical stance."""
COVERED_FRACTION = 0.5
"""A swing with output for less than this share of it counts as not stimulated."""


@dataclass(frozen=True)
class Swing:
    toe_off_s: float
    heel_strike_s: float
    from_reference: bool
    """Both ends taken from the motion-capture reference."""


@dataclass
class Delivery:
    """Stimulation against swings; adds up across walks."""

    swings: int = 0
    swing_s: float = 0.0
    covered_s: float = 0.0
    not_stimulated: int = 0
    onsets_s: list[float] = field(default_factory=list)
    """Burst onset minus toe-off, per stimulated swing (negative: on before toe-off)."""
    bursts: int = 0
    early_stance_bursts: int = 0
    """Bursts that began in the first half of a stance."""
    seconds: float = 0.0
    """How much walking this covers (for the report)."""

    def __iadd__(self, other: Delivery) -> Self:
        self.swings += other.swings
        self.swing_s += other.swing_s
        self.covered_s += other.covered_s
        self.not_stimulated += other.not_stimulated
        self.onsets_s += other.onsets_s
        self.bursts += other.bursts
        self.early_stance_bursts += other.early_stance_bursts
        return self

    @property
    def coverage(self) -> float:
        return self.covered_s / self.swing_s if self.swing_s else float("nan")

    def as_dict(self) -> dict[str, float | int | None]:
        onsets = np.asarray(self.onsets_s) * 1000
        return {
            "swings": self.swings,
            "swing_covered_pct": round(100 * self.coverage, 2),
            "swings_not_stimulated": self.not_stimulated,
            "swings_not_stimulated_pct": round(100 * self.not_stimulated / self.swings, 2)
            if self.swings else None,
            "onset_vs_toe_off_median_ms": round(float(np.median(onsets)), 1)
            if onsets.size else None,
            "onset_vs_toe_off_p95_ms": round(float(np.percentile(onsets, 95)), 1)
            if onsets.size else None,
            "bursts": self.bursts,
            "bursts_starting_in_early_stance": self.early_stance_bursts,
        }


def reference_swings(recording: Recording) -> list[Swing]:
    """Every swing of one foot's recording, in time order (see the module docstring)."""
    calibration = calibrate(recording.samples())
    w_dps = recording.gyro_dps @ np.asarray(calibration.axis)
    acc_norm = np.linalg.norm(recording.acc_mps2, axis=1)
    t_s = recording.t_s
    period_s = float(np.median(np.diff(t_s)))
    ref_to = [r.t_s for r in recording.reference if r.kind is GaitEventKind.TOE_OFF]
    ref_ic = [r.t_s for r in recording.reference if r.kind is GaitEventKind.HEEL_STRIKE]
    swings: list[Swing] = []
    for start, end in runs(w_dps > 0):
        if (end - start) * period_s < MIN_SWING_S or \
                w_dps[start:end].max() < SWING_PEAK_FRACTION * calibration.swing_peak_dps:
            continue
        before = max(0, start - round(PUSH_OFF_SEARCH_S / period_s))
        toe_off = before + int(np.argmin(w_dps[before:start + 1]))
        after = min(len(t_s), end + round(IMPACT_SEARCH_S / period_s))
        impact = end + int(np.argmax(acc_norm[end:after])) if after > end else end - 1
        strike_s = float(t_s[impact] if acc_norm[impact] > IMPACT_MIN_MPS2 else t_s[end - 1])
        to_s, to_ref = _nearest(float(t_s[toe_off]), ref_to)
        ic_s, ic_ref = _nearest(strike_s, ref_ic)
        swings.append(Swing(to_s, ic_s, to_ref and ic_ref))
    return swings


def _nearest(t_s: float, reference_s: Sequence[float]) -> tuple[float, bool]:
    if reference_s:
        nearest = min(reference_s, key=lambda r: abs(r - t_s))
        if abs(nearest - t_s) <= REFERENCE_MATCH_S:
            return nearest, True
    return t_s, False


def bursts_from_commands(commands: Sequence[tuple[float, float]], end_s: float) -> list[
        tuple[float, float]]:
    """(on_s, off_s) intervals of non-zero output from a channel's (t_s, mA) commands."""
    bursts: list[tuple[float, float]] = []
    on_s: float | None = None
    for t_s, amplitude_ma in commands:
        if amplitude_ma > 0 and on_s is None:
            on_s = t_s
        elif amplitude_ma <= 0 and on_s is not None:
            bursts.append((on_s, t_s))
            on_s = None
    if on_s is not None:
        bursts.append((on_s, end_s))
    return bursts


def score_delivery(swings: Sequence[Swing], bursts: Sequence[tuple[float, float]]) -> Delivery:
    """Swing coverage, unstimulated swings, onsets and early-stance bursts."""
    result = Delivery(swings=len(swings), bursts=len(bursts))
    for swing in swings:
        length_s = swing.heel_strike_s - swing.toe_off_s
        covered_s = sum(max(0.0, min(off, swing.heel_strike_s) - max(on, swing.toe_off_s))
                        for on, off in bursts)
        result.swing_s += length_s
        result.covered_s += covered_s
        if covered_s < COVERED_FRACTION * length_s:
            result.not_stimulated += 1
            continue
        onset = max((on for on, off in bursts
                     if on < swing.heel_strike_s and off > swing.toe_off_s), default=None)
        if onset is not None:
            result.onsets_s.append(onset - swing.toe_off_s)
    stances_s = [b.toe_off_s - a.heel_strike_s for a, b in itertools.pairwise(swings)]
    typical_s = float(np.median(stances_s)) if stances_s else 0.0
    for previous, following in itertools.pairwise(swings):
        # A foot that stays down far longer than a step's stance belongs to a walker who
        # stopped: its "first half" is that of a typical stance, not of the whole stop.
        stance_s = min(following.toe_off_s - previous.heel_strike_s, STOP_FACTOR * typical_s)
        half_s = previous.heel_strike_s + stance_s / 2
        result.early_stance_bursts += sum(previous.heel_strike_s < on < half_s
                                          for on, _ in bursts)
    return result
