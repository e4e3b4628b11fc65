"""Per-stride foot outcome references from motion-capture markers (benchmark only).

For :mod:`controller.outcomes.gait` on a recording with ``*_mocap_markers.csv`` (walk 1):
the foot's pitch is the angle of the heel (``FCC``) to toe (``TOE``) marker vector above the
horizontal, and the toe's height is the ``TOE`` marker's. For each reference stride (heel
strike to heel strike with a toe-off between, as the IMU measures are laid out):

* foot-flat is the stance frames where both markers move slower than
  :data:`~controller.scoring.heel_off.FLAT_SPEED_MMPS` (the slowest frame if none does);
  the pitch and toe height there are the stance values the measures are taken from;
* peak dorsiflexion is the highest pitch from toe-off to the next heel strike, the
  heel-strike angle the pitch at that heel strike, and the minimum toe clearance the
  mid-swing minimum of the toe height (:func:`controller.outcomes.gait.mid_swing_minimum`).

The marker vector is not the sole, so only changes of pitch are compared, never the angle
itself; the toe marker is not the lowest point of the shoe, which shifts the clearance.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from controller.detect.calibration import STRIDE_RANGE_S
from controller.devices.recording import Recording, ReferenceEvent
from controller.outcomes.gait import StepMeasures, mid_swing_minimum, step_measures
from controller.scoring.gait import TOLERANCE_S, match
from controller.scoring.heel_off import FLAT_SPEED_MMPS, marker_mm
from controller.types import GaitEvent, GaitEventKind

COMPARED = ("peak_dorsiflexion_deg", "heel_strike_angle_deg", "min_toe_clearance_m",
            "stride_time_s")


@dataclass(frozen=True)
class MarkerStride:
    heel_strike_s: float
    stride_time_s: float
    peak_dorsiflexion_deg: float
    heel_strike_angle_deg: float
    min_toe_clearance_m: float | None


def marker_strides(path: Path, foot: str,
                   reference: Sequence[ReferenceEvent]) -> list[MarkerStride]:
    """The reference measures of every reference stride of one foot."""
    t_s, toe_mm = marker_mm(path, foot, "TOE")
    _, heel_mm = marker_mm(path, foot, "FCC")
    foot_mm = toe_mm - heel_mm
    pitch_deg = np.degrees(np.arctan2(foot_mm[:, 2], np.hypot(foot_mm[:, 0], foot_mm[:, 1])))
    speed_mmps = np.maximum(np.linalg.norm(np.gradient(toe_mm, t_s, axis=0), axis=1),
                            np.linalg.norm(np.gradient(heel_mm, t_s, axis=0), axis=1))
    strikes = [r.t_s for r in reference if r.kind is GaitEventKind.HEEL_STRIKE]
    toe_offs = [r.t_s for r in reference if r.kind is GaitEventKind.TOE_OFF]
    strides = []
    for start_s, end_s in itertools.pairwise(strikes):
        toe_off_s = next((t for t in toe_offs if start_s < t < end_s), None)
        if toe_off_s is None or not STRIDE_RANGE_S[0] <= end_s - start_s <= STRIDE_RANGE_S[1]:
            continue
        stance = np.flatnonzero((t_s >= start_s) & (t_s <= toe_off_s))
        flat = stance[speed_mmps[stance] < FLAT_SPEED_MMPS]
        if not flat.size:
            flat = stance[[int(np.argmin(speed_mmps[stance]))]]
        swing = (t_s >= toe_off_s) & (t_s <= end_s)
        flat_pitch_deg = float(np.median(pitch_deg[flat]))
        clearance_mm = mid_swing_minimum(toe_mm[swing, 2] - np.median(toe_mm[flat, 2]))
        strides.append(MarkerStride(
            heel_strike_s=start_s,
            stride_time_s=end_s - start_s,
            peak_dorsiflexion_deg=float(pitch_deg[swing].max()) - flat_pitch_deg,
            heel_strike_angle_deg=float(np.interp(end_s, t_s, pitch_deg)) - flat_pitch_deg,
            min_toe_clearance_m=None if clearance_mm is None else clearance_mm / 1000,
        ))
    return strides


def recording_measures(recording: Recording,
                       events: Sequence[GaitEvent | ReferenceEvent]) -> list[StepMeasures]:
    """The outcome measures of one foot of a recording, from its heel strikes and toe-offs
    among ``events`` (reference or detected)."""
    strikes = [e.t_s for e in events if e.kind is GaitEventKind.HEEL_STRIKE]
    toe_offs = [e.t_s for e in events if e.kind is GaitEventKind.TOE_OFF]
    return step_measures(recording.t_s, recording.acc_mps2, recording.gyro_dps, strikes,
                         toe_offs, placement="foot")


def stride_errors(estimates: Sequence[StepMeasures], truth: Sequence[MarkerStride],
                  exclude_s: Sequence[tuple[float, float]] = ()) -> tuple[
        int, int, dict[str, list[float]]]:
    """Strides matched and reference strides (those overlapping ``exclude_s`` left out),
    and the IMU-minus-marker error of each :data:`COMPARED` measure, in its own unit.
    Strides are matched by their starting heel strike, one to one, within ±150 ms."""
    kept = [s for s in truth if not any(
        a < s.heel_strike_s + s.stride_time_s and b > s.heel_strike_s for a, b in exclude_s)]
    pairs = match([s.heel_strike_s for s in kept], [e.heel_strike_s for e in estimates],
                  TOLERANCE_S)
    found: dict[str, list[float]] = {name: [] for name in COMPARED}
    for i, j in pairs:
        for name in COMPARED:
            est, ref = getattr(estimates[j], name), getattr(kept[i], name)
            if est is not None and ref is not None:
                found[name].append(est - ref)
    return len(pairs), len(kept), found
