"""The tilt-threshold trigger (WalkAide style): a simpler, older alternative to the gyro detector.

The segment's sagittal tilt is measured against the standing posture taken before the
first step: positive when the distal end (ankle for the shank, toes for the foot) has
moved forward or up, the direction of swing. Heel-off is declared when the tilt passes
``-tilt_heel_off_deg`` (the segment leans back as the heel rises), heel strike when it
passes ``+tilt_heel_strike_deg`` in late swing. The gap between the two thresholds is the
hysteresis; each event re-arms the other.

Tilt comes from the sensor's own fused angle when ``Sample.angle_deg`` is given, else from
a complementary filter: integrated sagittal rate, pulled slowly (time constant about a
second) towards the accelerometer's gravity direction, which is right on average but
disturbed by every step. The sagittal axis and its sign come from a stored
``GaitCalibration`` or from the walk itself, kept by the same
:class:`controller.detect.axis_watch.AxisWatch` the gyro detector uses.
"""

from __future__ import annotations

import math

from controller.detect.axis_watch import AxisWatch
from controller.detect.calibration import GaitCalibration, Placement, typical_calibration
from controller.types import GaitEvent, GaitEventKind, Sample, Vector3

FILTER_TIME_CONSTANT_S = 1.0
STILL_DPS = 20.0


def gravity_from_angles(angle_deg: Vector3) -> Vector3:
    """Unit 'up' vector in the sensor frame from roll and pitch (Z-Y-X Euler angles)."""
    roll = math.radians(angle_deg[0])
    pitch = math.radians(angle_deg[1])
    return (-math.sin(pitch), math.sin(roll) * math.cos(pitch), math.cos(roll) * math.cos(pitch))


def _unit(v: Vector3) -> Vector3:
    norm = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) or 1.0
    return (v[0] / norm, v[1] / norm, v[2] / norm)


class TiltTrigger:
    """Heel-off and heel strike from tilt thresholds in degrees (a ``GaitDetector``)."""

    def __init__(
        self,
        tilt_heel_off_deg: float,
        tilt_heel_strike_deg: float,
        calibration: GaitCalibration | None = None,
        placement: Placement = "foot",
    ) -> None:
        if tilt_heel_off_deg <= 0 or tilt_heel_strike_deg <= 0:
            raise ValueError("tilt thresholds are magnitudes in degrees and must be positive")
        self._heel_off_deg = tilt_heel_off_deg
        self._heel_strike_deg = tilt_heel_strike_deg
        start = calibration or typical_calibration(placement)
        self._watch = AxisWatch(calibration.axis if calibration else None, start.impact_mps2,
                                calibration is not None, start.push_off_peak_dps)
        self.reset()

    def drain_notes(self) -> list[str]:
        """What the axis watch changed since last asked, in words."""
        notes, self._watch.notes = self._watch.notes, []
        return notes

    def reset(self) -> None:
        """Forget the walk and the standing posture; the axis found or given is kept."""
        self._standing_sum = [0.0, 0.0, 0.0]
        self._standing: Vector3 | None = None
        self._tilt_deg = 0.0
        self._t_last_s: float | None = None
        self._swinging = False

    @property
    def tilt_deg(self) -> float:
        """The current tilt estimate, relative to standing (0 until calibrated)."""
        return self._tilt_deg

    def update(self, sample: Sample) -> list[GaitEvent]:
        if self._standing is None:
            self._learn_standing(sample)
        a = sample.acc_mps2
        self._watch.feed(sample.t_s, sample.gyro_dps,
                         math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]))
        if self._watch.axis is None:
            return []
        self._watch.flipped = False
        return self._step(sample)

    def _learn_standing(self, sample: Sample) -> None:
        """Average the gravity direction until the limb first moves."""
        gx, gy, gz = sample.gyro_dps
        acc = _unit(sample.acc_mps2)
        if gx * gx + gy * gy + gz * gz < STILL_DPS * STILL_DPS:
            for i in range(3):
                self._standing_sum[i] += acc[i]
        elif any(self._standing_sum):
            self._standing = _unit(
                (self._standing_sum[0], self._standing_sum[1], self._standing_sum[2])
            )
        else:
            self._standing = acc

    def _step(self, sample: Sample) -> list[GaitEvent]:
        previous_deg = self._tilt_deg
        t_previous = self._t_last_s
        self._tilt_deg = self._estimate(sample)
        self._t_last_s = sample.t_s
        if t_previous is None:
            return []
        tilt = self._tilt_deg
        if not self._swinging and tilt < -self._heel_off_deg:
            kind, level = GaitEventKind.HEEL_OFF, -self._heel_off_deg
        elif self._swinging and tilt > self._heel_strike_deg:
            kind, level = GaitEventKind.HEEL_STRIKE, self._heel_strike_deg
        else:
            return []
        self._swinging = not self._swinging
        fraction = (level - previous_deg) / (tilt - previous_deg)
        t_event = t_previous + fraction * (sample.t_s - t_previous)
        return [GaitEvent(kind, t_event, sample.t_s)]

    def _estimate(self, sample: Sample) -> float:
        standing = self._standing or _unit(sample.acc_mps2)
        axis = self._watch.axis
        assert axis is not None
        if sample.angle_deg is not None:
            return _tilt_between(standing, gravity_from_angles(sample.angle_deg), axis)
        measured = _tilt_between(standing, _unit(sample.acc_mps2), axis)
        if self._t_last_s is None:
            return measured
        dt = sample.t_s - self._t_last_s
        g = sample.gyro_dps
        rate_dps = g[0] * axis[0] + g[1] * axis[1] + g[2] * axis[2]
        keep = FILTER_TIME_CONSTANT_S / (FILTER_TIME_CONSTANT_S + dt)
        return keep * (self._tilt_deg + rate_dps * dt) + (1.0 - keep) * measured


def _tilt_between(standing: Vector3, up: Vector3, axis: Vector3) -> float:
    """Rotation of the segment about ``axis`` that turns the standing 'up' into ``up``.

    Gravity seen from a segment that rotates by +θ turns by -θ, hence the minus sign.
    """
    cx = standing[1] * up[2] - standing[2] * up[1]
    cy = standing[2] * up[0] - standing[0] * up[2]
    cz = standing[0] * up[1] - standing[1] * up[0]
    sine = cx * axis[0] + cy * axis[1] + cz * axis[2]
    cosine = standing[0] * up[0] + standing[1] * up[1] + standing[2] * up[2]
    return -math.degrees(math.atan2(sine, cosine))
