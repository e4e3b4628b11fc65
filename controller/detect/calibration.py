"""Gait calibration: where the sagittal axis is and how big a stride's features are.

The detector never assumes a mounting. Walking itself tells us the sensor frame:

* The sagittal axis is the principal axis of the angular velocity while the limb moves:
  foot and shank both rotate mostly about the medio-lateral axis when walking.
* Its sign is fixed by the heel strike. Swing is the rotation that ends in an impact
  (a sharp peak of the acceleration norm, fast rotation before it, little after it), so
  the rotation seen just before impacts is called positive. Amplitude alone cannot decide
  it: on the foot the push-off peak is often larger than the swing peak, on the shank it
  is the other way round.
* The sizes used by the thresholds (swing peak, push-off peak, impact, stride time) are
  medians over the steps found, so one odd step does not set them.

``calibrate`` works offline on a short calibration walk (``fes calibrate``, the calibration
screen). The online detectors never call it: they start from a stored calibration or from
:func:`typical_calibration` and refine that stride by stride.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from controller.types import GRAVITY_MPS2, Sample, Vector3

MOVING_DPS = 60.0
"""Angular speed above which the limb counts as moving (slow walking swings reach 200+)."""
MIN_MOVING_S = 0.4
IMPACT_MIN_MPS2 = 1.5 * GRAVITY_MPS2
"""An acceleration-norm peak below 1.5 g is not taken for a heel strike."""
PEAK_HALF_WIDTH_S = 0.1
PRE_IMPACT_S = (0.30, 0.05)
"""Window before an impact, in seconds back from it, that holds late swing."""
POST_IMPACT_S = (0.05, 0.25)
"""Window after an impact that holds early stance."""
SWING_BEFORE_IMPACT_S = 0.45
PUSH_OFF_BEFORE_SWING_S = 0.2
MIN_STEPS = 2
MIN_SIGN_AGREEMENT = 2.0 / 3.0
STRIDE_RANGE_S = (0.6, 2.5)
DEFAULT_STRIDE_S = 1.1
DEFAULT_PUSH_OFF_FRACTION = 0.5
"""Push-off peak assumed, as a fraction of the swing peak, when no push-off was seen."""

Placement = Literal["foot", "shank"]


class CalibrationError(ValueError):
    """The samples do not hold enough walking to calibrate from."""


@dataclass(frozen=True, slots=True)
class GaitCalibration:
    """What the detector needs to know about one sensor on one limb.

    ``axis`` is a unit vector in the sensor frame; angular velocity projected on it is
    positive in swing. The magnitudes set the detector's thresholds as fractions.
    """

    axis: Vector3
    swing_peak_dps: float
    push_off_peak_dps: float
    impact_mps2: float
    stride_s: float

    def __post_init__(self) -> None:
        norm = math.sqrt(sum(c * c for c in self.axis))
        if not 0.99 < norm < 1.01:
            raise ValueError(f"axis must be a unit vector, got norm {norm:.3f}")
        for name in ("swing_peak_dps", "push_off_peak_dps", "impact_mps2", "stride_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    def to_dict(self) -> dict[str, float | list[float]]:
        """Plain values, ready for TOML."""
        data: dict[str, float | list[float]] = asdict(self)
        data["axis"] = list(self.axis)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> GaitCalibration:
        """The inverse of ``to_dict``; raises ``ValueError`` naming the bad field."""
        try:
            axis = data["axis"]
            if not isinstance(axis, Sequence) or len(axis) != 3:
                raise ValueError("axis must be a list of three numbers")
            x, y, z = (float(c) for c in axis)
            return cls(
                axis=(x, y, z),
                swing_peak_dps=float(data["swing_peak_dps"]),  # type: ignore[arg-type]
                push_off_peak_dps=float(data["push_off_peak_dps"]),  # type: ignore[arg-type]
                impact_mps2=float(data["impact_mps2"]),  # type: ignore[arg-type]
                stride_s=float(data["stride_s"]),  # type: ignore[arg-type]
            )
        except KeyError as exc:
            raise ValueError(f"gait calibration is missing {exc.args[0]!r}") from exc
        except TypeError as exc:
            raise ValueError(f"gait calibration has a non-numeric field: {exc}") from exc


def calibrate(samples: Sequence[Sample]) -> GaitCalibration:
    """Calibrate from a walk of at least two steps (a few strides give steadier figures).

    Raises ``CalibrationError`` when the samples hold too little walking.
    """
    if len(samples) < 10:
        raise CalibrationError("too few samples to calibrate from")
    t_s = np.fromiter((s.t_s for s in samples), float, len(samples))
    gyro_dps = np.array([s.gyro_dps for s in samples], dtype=float)
    acc_norm_mps2 = np.linalg.norm(np.array([s.acc_mps2 for s in samples], dtype=float), axis=1)
    period_s = float(np.median(np.diff(t_s)))
    if not period_s > 0:
        raise CalibrationError("sample times do not increase")
    speed_dps = np.linalg.norm(gyro_dps, axis=1)
    impacts = _impacts(acc_norm_mps2, speed_dps, period_s)
    axis = sagittal_axis(gyro_dps, impacts, period_s)
    sagittal_dps = gyro_dps @ axis

    swing_peaks: list[float] = []
    push_offs: list[float] = []
    swing_n = round(SWING_BEFORE_IMPACT_S / period_s)
    push_n = round(PUSH_OFF_BEFORE_SWING_S / period_s)
    for i in impacts:
        start = max(0, i - swing_n)
        peak = start + int(np.argmax(sagittal_dps[start:i]))
        swing_peaks.append(float(sagittal_dps[peak]))
        below = np.flatnonzero(sagittal_dps[:peak] < 0)
        if below.size and below[-1] - push_n >= 0:
            onset = int(below[-1])
            push_offs.append(-float(sagittal_dps[onset - push_n : onset + 1].min()))
    swing_peak_dps = float(np.median(swing_peaks))
    push_offs = [p for p in push_offs if p > 0]
    push_off_dps = (
        float(np.median(push_offs)) if push_offs else DEFAULT_PUSH_OFF_FRACTION * swing_peak_dps
    )
    intervals = np.diff(t_s[impacts])
    stride_s = float(np.median(intervals)) if intervals.size else DEFAULT_STRIDE_S
    return GaitCalibration(
        axis=(float(axis[0]), float(axis[1]), float(axis[2])),
        swing_peak_dps=swing_peak_dps,
        push_off_peak_dps=push_off_dps,
        impact_mps2=float(np.median(acc_norm_mps2[impacts])),
        stride_s=float(np.clip(stride_s, *STRIDE_RANGE_S)),
    )


def sagittal_axis(gyro_dps: np.ndarray, impacts: Sequence[int], period_s: float) -> np.ndarray:
    """The swing-positive sagittal axis (unit vector, sensor frame) of a walk whose heel
    strikes are at sample indices ``impacts``.

    Raises ``CalibrationError`` when the limb hardly moves, there are too few heel strikes,
    or they disagree on the swing direction.
    """
    moving_gyro = gyro_dps[np.linalg.norm(gyro_dps, axis=1) > MOVING_DPS]
    if len(moving_gyro) * period_s < MIN_MOVING_S:
        raise CalibrationError("no walking found: the limb hardly moves")
    pre = _window(PRE_IMPACT_S, period_s)
    impacts = [i for i in impacts if i - pre[0] >= 0]
    if len(impacts) < MIN_STEPS:
        raise CalibrationError(
            f"found {len(impacts)} heel strike(s), need {MIN_STEPS}: walk a few more steps"
        )
    _, vectors = np.linalg.eigh(moving_gyro.T @ moving_gyro)
    axis: np.ndarray = vectors[:, -1]
    sagittal_dps = gyro_dps @ axis
    votes = np.array([sagittal_dps[i - pre[0] : i - pre[1]].mean() for i in impacts])
    sign = 1.0 if votes.sum() > 0 else -1.0
    if np.mean(np.sign(votes) == sign) < MIN_SIGN_AGREEMENT:
        raise CalibrationError("the steps disagree on the swing direction: walk straight")
    return axis * sign


def _window(bounds_s: tuple[float, float], period_s: float) -> tuple[int, int]:
    return round(bounds_s[0] / period_s), round(bounds_s[1] / period_s)


def _impacts(acc_norm_mps2: np.ndarray, speed_dps: np.ndarray, period_s: float) -> list[int]:
    """Indices of heel strikes: acceleration peaks with fast rotation before, calm after.

    The before/after test rejects the push-off, which also jolts the sensor but is
    followed by the swing rather than preceded by it.
    """
    half = max(1, round(PEAK_HALF_WIDTH_S / period_s))
    pre = _window(PRE_IMPACT_S, period_s)
    post = _window(POST_IMPACT_S, period_s)
    padded = np.pad(acc_norm_mps2, half, constant_values=-np.inf)
    local_max = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1).max(axis=1)
    candidates = np.flatnonzero(
        (acc_norm_mps2 >= local_max) & (acc_norm_mps2 > IMPACT_MIN_MPS2)
    )
    impacts: list[int] = []
    for i in candidates:
        if i - pre[0] < 0 or i + post[1] > len(speed_dps):
            continue
        before = speed_dps[i - pre[0] : i - pre[1]].mean()
        after = speed_dps[i + post[0] : i + post[1]].mean()
        if before > MOVING_DPS and before > 1.5 * after and (
            not impacts or i - impacts[-1] > 2 * half
        ):
            impacts.append(int(i))
    return impacts


_TYPICAL = {
    "foot": (300.0, 250.0, 4.0 * GRAVITY_MPS2),
    "shank": (250.0, 100.0, 2.5 * GRAVITY_MPS2),
}
"""Swing peak (°/s), push-off peak (°/s) and impact (m/s²) a detector starts from.

Healthy adults reach 350-380 °/s of swing, 270-590 °/s of push-off and 6-13 g of impact
on the shared foot recordings, and about 300-400 °/s of swing on the shank; people with
foot drop walk slower. The values sit below those, so that a slow walker passes the
detector's thresholds (fractions of them) from the first step; every stride then moves
them towards the walker's own.
"""


def typical_calibration(placement: Placement) -> GaitCalibration:
    """Magnitudes that suit most adults with the sensor on the ``placement``.

    The axis is a placeholder: a detector started from this finds the axis from the walk.
    """
    swing_dps, push_off_dps, impact_mps2 = _TYPICAL[placement]
    return GaitCalibration((0.0, 0.0, 1.0), swing_dps, push_off_dps, impact_mps2,
                           DEFAULT_STRIDE_S)
