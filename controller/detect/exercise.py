"""The exercise phase detector: a segment's angle from rest, and the phases of a repetition.

Causal, one sample at a time, for a sensor on the foot or the shank:

1. **Rest orientation.** The first half second in which the sensor is still gives the gyro
   bias and the direction of gravity at rest.
2. **Angle.** Gravity's direction in the sensor frame is carried forward by the gyro and
   pulled towards the accelerometer's direction with a time constant (a complementary
   filter), so fast movement comes from the gyro and the slow truth from gravity. The angle
   is the rotation of that direction away from rest, in the plane normal to the movement
   axis: a named sensor axis, or under ``auto`` the main axis of the gyro's motion, learnt
   from the movements themselves (until the first movement has shown it, the unsigned tilt
   from rest is used, which is the same number for a movement in one plane).
3. **Rest level.** The angle at rest is followed while the segment is still, so a rest
   posture that drifts between repetitions does not pass for movement.
4. **Phases.** ``onset`` when the angle rises one threshold above the lowest point since
   rest; ``reached`` when the rise stops at least ``min_rom_deg`` from rest; ``lowering``
   when it leaves that top; ``at_rest`` when it is back near rest: only then is the
   repetition complete. A rise that comes back without a top is ``abandoned`` (an
   incomplete repetition) or, when it was hardly bigger than the threshold, a ``fidget``.

Every constant is a time or an angle, never a sample count, so it works from 25 to 250 Hz;
the rest level, the noise floor and the movement axis come from the data.
"""

from __future__ import annotations

import math
from collections import deque
from enum import Enum

import numpy as np

from controller.types import GRAVITY_MPS2, ExerciseEvent, ExerciseEventKind, Sample

STILL_DPS = 12.0
"""Below this angular speed the segment counts as still (at rest, or at its top)."""
CALIBRATION_S = 0.5
"""Still time needed for the rest orientation and the gyro bias."""
CALIBRATION_STILL_DPS = 10.0
"""Gyro magnitude (bias included) under which a sample may join the rest calibration."""
GRAVITY_TAU_S = 0.5
"""How fast the angle is pulled towards the accelerometer's idea of gravity."""
GRAVITY_TRUST = 0.2
"""The accelerometer is trusted only while its magnitude is within this share of g."""
REST_TAU_S = 2.0
"""How fast the rest level follows a still segment."""
REST_STILL_S = 0.5
REST_STILL_DEG = 1.0
"""The rest level follows only a segment that stayed within this band for REST_STILL_S,
so a slow rise is never taken for a new rest."""
AXIS_MOVING_DPS = 30.0
"""Gyro samples faster than this teach the movement axis."""
AXIS_LEARNT_DEG = 15.0
"""Rotation seen before the learnt axis replaces the unsigned tilt."""
TOP_DROP_FRACTION = 0.1
"""The top is left when the angle falls this share of the peak below it (90 % hold band)."""
REST_FRACTION = 0.2
"""Back at rest: within this share of the peak (or one threshold) from the rest level."""
SETTLE_S = 0.5
"""A small rise that stays still this long is a new rest posture, not a repetition..."""
SETTLE_SHARE = 0.25
"""...when it is smaller than this share of the typical repetition so far (before the
first repetition, a small held rise is a weak attempt: it stays a rise)."""
TYPICAL_OF = 5
"""The typical range is the median of this many latest repetitions."""
ONSET_LOOKBACK_S = 1.5
"""How far back the onset time may be placed before the threshold crossing."""
FIDGET_MAX = 1.5
"""A rise given up below this many thresholds was a fidget, not an attempt."""
NOISE_MARGIN = 4.0
"""The onset threshold is at least this many standard deviations of the rest noise."""

_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


class _State(Enum):
    CALIBRATING = "calibrating"
    REST = "rest"
    RISING = "rising"
    TOP = "top"
    LOWERING = "lowering"


def named_axis(axis: str) -> np.ndarray | None:
    """``x``/``-y``... as a unit vector in the sensor frame; ``auto`` as None."""
    if axis == "auto":
        return None
    sign = -1.0 if axis.startswith("-") else 1.0
    return sign * np.array(_AXES[axis.lstrip("-")])


class ExercisePhaseDetector:
    """Samples in, exercise events out; ``angle_deg`` is the current excursion from rest."""

    def __init__(self, onset_threshold_deg: float = 5.0, min_rom_deg: float | None = None,
                 axis: str = "auto") -> None:
        self.onset_threshold_deg = onset_threshold_deg
        self.min_rom_deg = min_rom_deg if min_rom_deg is not None else 2 * onset_threshold_deg
        self._fixed_axis = named_axis(axis)
        self._calibration: list[Sample] = []
        self._bias_rad_s = np.zeros(3)
        self._rest_gravity = np.zeros(3)
        self._gravity = np.zeros(3)
        self._axis = self._fixed_axis
        self._axis_scatter = np.zeros((3, 3))
        self._rotation_seen_deg = 0.0
        self._state = _State.CALIBRATING
        self._last_t_s: float | None = None
        self._angle_deg = 0.0
        self._rest_deg = 0.0
        self._noise_var = 0.0
        self._floor_deg = 0.0
        self._peak_deg = 0.0
        self._peak_t_s = 0.0
        self._moving_at_s = 0.0
        self._recent_roms_deg: deque[float] = deque(maxlen=TYPICAL_OF)
        self._history: deque[tuple[float, float, float]] = deque()

    @property
    def calibrated(self) -> bool:
        return self._state is not _State.CALIBRATING

    @property
    def angle_deg(self) -> float:
        """Excursion of the segment from its rest level, in the movement's plane."""
        return self._angle_deg - self._rest_deg if self.calibrated else 0.0

    @property
    def cross_angle_deg(self) -> float:
        """The tilt from rest about the other horizontal axis (across the movement): the
        second axis of an ankle alphabet, the side-to-side part of a sway. Zero until the
        movement axis is known."""
        if not self.calibrated or self._axis is None:
            return 0.0
        across = np.cross(self._rest_gravity, self._axis)
        norm = float(np.linalg.norm(across))
        return self._signed_angle_deg(across / norm) if norm > 0.1 else 0.0

    @property
    def threshold_deg(self) -> float:
        """The onset threshold in use: the protocol's, or more where the rest is noisy."""
        return max(self.onset_threshold_deg, NOISE_MARGIN * math.sqrt(self._noise_var))

    def reset(self) -> None:
        """After a pause or a fault: keep the calibration, forget the repetition under way."""
        if self.calibrated:
            self._state = _State.REST
            self._floor_deg = self._angle_deg
        self._history.clear()

    def update(self, sample: Sample) -> list[ExerciseEvent]:
        if self._state is _State.CALIBRATING:
            self._calibrate(sample)
            return []
        dt_s = self._dt_s(sample.t_s)
        previous_deg = self._angle_deg
        self._track(sample, dt_s)
        rate_dps = (self._angle_deg - previous_deg) / dt_s if dt_s > 0 else 0.0
        if abs(rate_dps) > STILL_DPS:
            self._moving_at_s = sample.t_s
        self._history.append((sample.t_s, self._angle_deg, rate_dps))
        while self._history[0][0] < sample.t_s - ONSET_LOOKBACK_S:
            self._history.popleft()
        return self._phases(sample.t_s, rate_dps, dt_s)

    # -- orientation ------------------------------------------------------------------------

    def _calibrate(self, sample: Sample) -> None:
        gyro = np.asarray(sample.gyro_dps)
        if float(np.linalg.norm(gyro)) > CALIBRATION_STILL_DPS:
            self._calibration.clear()
            return
        self._calibration.append(sample)
        if sample.t_s - self._calibration[0].t_s < CALIBRATION_S:
            return
        acc = np.mean([s.acc_mps2 for s in self._calibration], axis=0)
        self._bias_rad_s = np.radians(np.mean([s.gyro_dps for s in self._calibration], axis=0))
        self._rest_gravity = acc / np.linalg.norm(acc)
        self._gravity = self._rest_gravity.copy()
        self._last_t_s = sample.t_s
        self._state = _State.REST
        self._calibration.clear()

    def _dt_s(self, t_s: float) -> float:
        last_s = self._last_t_s if self._last_t_s is not None else t_s
        self._last_t_s = t_s
        return min(max(t_s - last_s, 0.0), 0.1)

    def _track(self, sample: Sample, dt_s: float) -> None:
        omega = np.radians(sample.gyro_dps) - self._bias_rad_s
        gravity = self._gravity - dt_s * np.cross(omega, self._gravity)
        acc = np.asarray(sample.acc_mps2)
        magnitude = float(np.linalg.norm(acc))
        if abs(magnitude - GRAVITY_MPS2) < GRAVITY_TRUST * GRAVITY_MPS2:
            pull = min(dt_s / GRAVITY_TAU_S, 1.0)
            gravity = (1.0 - pull) * gravity + pull * acc / magnitude
        self._gravity = gravity / np.linalg.norm(gravity)
        if self._fixed_axis is None:
            self._learn_axis(omega, dt_s)
        self._angle_deg = self._angle_from_rest()

    def _learn_axis(self, omega: np.ndarray, dt_s: float) -> None:
        speed_dps = math.degrees(float(np.linalg.norm(omega)))
        if speed_dps < AXIS_MOVING_DPS:
            return
        self._axis_scatter += np.outer(omega, omega) * dt_s
        self._rotation_seen_deg += speed_dps * dt_s
        if self._rotation_seen_deg < AXIS_LEARNT_DEG or self._state in (
                _State.TOP, _State.LOWERING):
            return
        axis = np.linalg.eigh(self._axis_scatter)[1][:, -1]
        if self._axis is None:
            # Orient the first axis so that the movement that taught it is positive.
            sign = 1.0 if self._signed_angle_deg(axis) >= 0 else -1.0
            self._axis = sign * axis
        else:
            self._axis = axis if float(axis @ self._axis) >= 0 else -axis

    def _angle_from_rest(self) -> float:
        if self._axis is None:
            cosine = float(np.clip(self._gravity @ self._rest_gravity, -1.0, 1.0))
            return math.degrees(math.acos(cosine))
        return self._signed_angle_deg(self._axis)

    def _signed_angle_deg(self, axis: np.ndarray) -> float:
        """Rotation of the sensor about ``axis`` that takes rest gravity to gravity now."""
        rest = self._rest_gravity - (self._rest_gravity @ axis) * axis
        now = self._gravity - (self._gravity @ axis) * axis
        return math.degrees(math.atan2(float(axis @ np.cross(now, rest)), float(rest @ now)))

    # -- phases -----------------------------------------------------------------------------

    def _phases(self, t_s: float, rate_dps: float, dt_s: float) -> list[ExerciseEvent]:
        excursion_deg = self._angle_deg - self._rest_deg
        threshold_deg = self.threshold_deg
        state = self._state
        if state is _State.REST:
            self._follow_rest(excursion_deg, dt_s)
            self._floor_deg = min(self._floor_deg, self._angle_deg)
            if self._angle_deg - self._base_deg() > threshold_deg and rate_dps > 0:
                return [self._onset(t_s, threshold_deg)]
            return []
        if excursion_deg > self._peak_deg:
            self._peak_deg, self._peak_t_s = excursion_deg, t_s
        if state is _State.RISING:
            return self._phases_rising(t_s, excursion_deg, rate_dps, threshold_deg)
        if state is _State.TOP:
            return self._phases_at_top(t_s, excursion_deg, rate_dps, threshold_deg)
        back_deg = max(threshold_deg, REST_FRACTION * self._peak_deg)
        if excursion_deg <= threshold_deg / 2 or (
                excursion_deg <= back_deg and rate_dps >= -STILL_DPS):
            return [self._back_to_rest(ExerciseEventKind.AT_REST, t_s)]
        return []

    def _phases_rising(self, t_s: float, excursion_deg: float, rate_dps: float,
                       threshold_deg: float) -> list[ExerciseEvent]:
        base_deg = self._base_deg()
        risen_deg = self._peak_deg + self._rest_deg - base_deg
        if self._angle_deg - base_deg <= threshold_deg / 2:
            kind = (ExerciseEventKind.FIDGET if risen_deg < FIDGET_MAX * threshold_deg
                    else ExerciseEventKind.ABANDONED)
            return [self._back_to_rest(kind, t_s)]
        if self._resettled(risen_deg, threshold_deg) and t_s - self._moving_at_s >= SETTLE_S:
            self._rest_deg = self._angle_deg
            return [self._back_to_rest(ExerciseEventKind.FIDGET, t_s)]
        if self._peak_deg >= self.min_rom_deg and (
                rate_dps <= STILL_DPS or self._left_top(excursion_deg, threshold_deg)):
            self._state = _State.TOP
            reached = self._event(ExerciseEventKind.REACHED, self._peak_t_s, t_s)
            return [reached, *self._phases_at_top(t_s, excursion_deg, rate_dps, threshold_deg)]
        return []

    def _resettled(self, risen_deg: float, threshold_deg: float) -> bool:
        if not self._recent_roms_deg:
            return False
        typical_deg = float(np.median(self._recent_roms_deg))
        return risen_deg < min(2 * threshold_deg, SETTLE_SHARE * typical_deg)

    def _base_deg(self) -> float:
        """Where a rise starts from: the lowest point since rest, but never below rest."""
        return max(self._floor_deg, self._rest_deg)

    def _phases_at_top(self, t_s: float, excursion_deg: float, rate_dps: float,
                       threshold_deg: float) -> list[ExerciseEvent]:
        if self._left_top(excursion_deg, threshold_deg) and rate_dps < 0:
            self._state = _State.LOWERING
            return [self._event(ExerciseEventKind.LOWERING, t_s, t_s)]
        return []

    def _left_top(self, excursion_deg: float, threshold_deg: float) -> bool:
        drop_deg = max(threshold_deg, TOP_DROP_FRACTION * self._peak_deg)
        return excursion_deg < self._peak_deg - drop_deg

    def _follow_rest(self, excursion_deg: float, dt_s: float) -> None:
        if excursion_deg > self.threshold_deg or not self._still_lately():
            return
        weight = min(dt_s / REST_TAU_S, 1.0)
        self._rest_deg += weight * excursion_deg
        self._noise_var += weight * (excursion_deg ** 2 - self._noise_var)

    def _still_lately(self) -> bool:
        newest_s = self._history[-1][0]
        if newest_s - self._history[0][0] < REST_STILL_S:
            return False
        recent = [angle for t_s, angle, _ in self._history if t_s >= newest_s - REST_STILL_S]
        return max(recent) - min(recent) <= REST_STILL_DEG

    def _onset(self, t_s: float, threshold_deg: float) -> ExerciseEvent:
        """Start a rise; its time is the last still moment near the floor before it."""
        self._state = _State.RISING
        self._floor_deg = self._base_deg()
        self._peak_deg, self._peak_t_s = self._angle_deg - self._rest_deg, t_s
        began_s = self._history[0][0]
        base_deg = self._floor_deg
        for seen_s, angle_deg, rate_dps in reversed(self._history):
            if rate_dps <= STILL_DPS and angle_deg - base_deg <= threshold_deg / 2:
                began_s = seen_s
                break
        return self._event(ExerciseEventKind.ONSET, began_s, t_s)

    def _back_to_rest(self, kind: ExerciseEventKind, t_s: float) -> ExerciseEvent:
        if kind is ExerciseEventKind.AT_REST:
            self._recent_roms_deg.append(self._peak_deg)
        self._state = _State.REST
        self._floor_deg = self._angle_deg
        return self._event(kind, t_s, t_s)

    def _event(self, kind: ExerciseEventKind, t_s: float, detected_at_s: float
               ) -> ExerciseEvent:
        angle_deg = (self._angle_deg - self._rest_deg if kind is ExerciseEventKind.ONSET
                     else self._peak_deg)
        return ExerciseEvent(kind, t_s, detected_at_s, round(angle_deg, 2))
