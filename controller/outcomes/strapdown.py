"""The sensor's motion through one stride, integrated from one still moment to the next.

Integrated freely, an IMU drifts within seconds; but a walking foot rests flat on the floor
once per stride, and there two things are known:

* its tilt: the accelerometer reads gravity only, so the orientation is known up to
  heading. The *level frame* of a stride is fixed there: z up, x the foot's forward
  direction (level and perpendicular to the sagittal axis), so pitch is relative to the
  foot's own flat-foot orientation whatever the mounting;
* its velocity: zero.

Between two still moments the angular velocity is integrated (rotation-vector steps); the
tilt error left at the second one is spread linearly back over the stride, and so is the
velocity error (the zero-velocity update, ZUPT) before velocity is integrated to position.
A constant accelerometer bias, including a scale error on gravity, goes with the velocity
drift. The height left at the second foot-flat is spread back the same way: the foot comes
down on the level floor it left. (Walk 1 ends its strides 1-3 cm off without that, as much
as a toe clearance; on stairs or a ramp the heights are wrong.) A segment that is never
still (the shank) gets orientation only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

UP = np.array([0.0, 0.0, 1.0])
MIN_PIVOT_SAMPLES = 20
"""Push-off samples needed before the toe's lever arm is trusted."""


@dataclass(frozen=True)
class StrideMotion:
    """One stride of sensor motion in the stride's level frame."""

    t_s: np.ndarray
    """Sample times, from the middle of one still period to the middle of the next."""
    gyro_dps: np.ndarray
    rotation: np.ndarray
    """(n, 3, 3) rotations from the sensor frame to the level frame."""
    forward: np.ndarray
    """The sensor-frame direction that is level and forward at the start."""
    velocity_mps: np.ndarray | None
    """(n, 3) sensor velocity; None when the stride does not end still (shank)."""
    position_m: np.ndarray | None
    """(n, 3) sensor position from its start; None as for the velocity."""

    def pitch_deg(self) -> np.ndarray:
        """Toe-up pitch relative to the still start (foot-flat)."""
        forward_z = (self.rotation @ self.forward)[:, 2]
        return np.asarray(np.degrees(np.arcsin(np.clip(forward_z, -1.0, 1.0))))

    def height_m(self, lever_m: np.ndarray) -> np.ndarray:
        """Height of the point ``lever_m`` from the sensor (sensor frame), relative to
        its height at the start."""
        if self.position_m is None:
            raise ValueError("no position: the stride has no zero-velocity ends")
        z_m = self.position_m[:, 2] + (self.rotation @ lever_m)[:, 2]
        return np.asarray(z_m - z_m[0])


def integrate_stride(t_s: np.ndarray, acc_mps2: np.ndarray, gyro_dps: np.ndarray,
                     axis: np.ndarray, first: slice, last: slice,
                     zero_velocity: bool) -> StrideMotion:
    """The motion from the middle of still period ``first`` to the middle of ``last``
    (index ranges into the arrays). ``axis`` is the swing-positive sagittal axis."""
    gravity_first = acc_mps2[first].mean(axis=0)
    gravity_last = acc_mps2[last].mean(axis=0)
    i0, i1 = (first.start + first.stop - 1) // 2, (last.start + last.stop - 1) // 2
    t = t_s[i0 : i1 + 1]
    gyro = gyro_dps[i0 : i1 + 1]
    up = gravity_first / np.linalg.norm(gravity_first)
    forward = np.cross(up, axis)
    forward /= np.linalg.norm(forward)
    level = np.vstack([forward, np.cross(up, forward), up])
    steps = np.radians(0.5 * (gyro[1:] + gyro[:-1])) * np.diff(t)[:, None]
    rotation = np.empty((len(t), 3, 3))
    rotation[0] = level
    for k, step in enumerate(_exp(steps)):
        rotation[k + 1] = rotation[k] @ step
    fraction = (t - t[0]) / (t[-1] - t[0])
    seen_up = rotation[-1] @ (gravity_last / np.linalg.norm(gravity_last))
    rotation = _exp(fraction[:, None] * _rotation_between(seen_up, UP)) @ rotation
    if not zero_velocity:
        return StrideMotion(t, gyro, rotation, forward, None, None)
    g_mps2 = 0.5 * (np.linalg.norm(gravity_first) + np.linalg.norm(gravity_last))
    acc_level = np.einsum("nij,nj->ni", rotation, acc_mps2[i0 : i1 + 1]) - g_mps2 * UP
    velocity = _cumulative(acc_level, t)
    velocity -= fraction[:, None] * velocity[-1]
    position = _cumulative(velocity, t)
    position[:, 2] -= fraction * position[-1, 2]
    return StrideMotion(t, gyro, rotation, forward, velocity, position)


def toe_lever_m(push_offs: Sequence[tuple[StrideMotion, np.ndarray, float]]) -> np.ndarray | None:
    """The lever arm (m, sensor frame) from the sensor to the toe, or None with too few
    push-off samples. ``push_offs`` holds each stride's motion, a mask of its push-off
    samples with the forefoot still flat, and its toe-off time.

    Two facts of the forefoot rocker, no body measurements:

    * From heel-off the foot turns about the metatarsal heads, which stay on the floor:
      the point of zero velocity, ``ω × v / |ω|²`` from the sensor, is that pivot (median
      over the samples; walk 1: it stays within ±1.5 cm until the foot has turned 20°).
    * The toe is the last point to leave the floor: along the sole (level at foot-flat)
      ahead of the pivot, it is the point whose height at toe-off is back at its foot-flat
      height (median over strides; walk 1: 6.8 cm on both feet).
    """
    pivots = [_pivots(motion, mask) for motion, mask, _ in push_offs]
    if sum(len(p) for p in pivots) < MIN_PIVOT_SAMPLES:
        return None
    pivot = np.median(np.concatenate(pivots), axis=0)
    ahead_m = []
    for motion, _, toe_off_s in push_offs:
        k = min(int(np.searchsorted(motion.t_s, toe_off_s)), len(motion.t_s) - 1)
        sole_rise = (motion.rotation[k] @ motion.forward)[2]
        if sole_rise < 0:  # toes down: points further ahead are lower
            ahead_m.append(-float(motion.height_m(pivot)[k]) / sole_rise)
    forward = np.median([motion.forward for motion, _, _ in push_offs], axis=0)
    return np.asarray(pivot + np.median(ahead_m) * forward / np.linalg.norm(forward))


def _pivots(motion: StrideMotion, mask: np.ndarray) -> np.ndarray:
    """(k, 3) points of zero velocity (sensor frame) of the masked samples, in the
    sagittal plane through the sensor: the sagittal rotation hardly shows the
    medio-lateral offset, and it hardly moves the toe's height."""
    if motion.velocity_mps is None:
        return np.empty((0, 3))
    omega = np.radians(motion.gyro_dps[mask])
    velocity = np.einsum("nji,nj->ni", motion.rotation[mask], motion.velocity_mps[mask])
    points = np.cross(omega, velocity) / np.sum(omega * omega, axis=1)[:, None]
    lateral = motion.rotation[0][1]
    return np.asarray(points - np.outer(points @ lateral, lateral))


def _skew(v: np.ndarray) -> np.ndarray:
    """(n, 3, 3) cross-product matrices: ``_skew(v) @ x == cross(v, x)``."""
    zero = np.zeros(len(v))
    return np.stack([np.stack([zero, -v[:, 2], v[:, 1]], axis=-1),
                     np.stack([v[:, 2], zero, -v[:, 0]], axis=-1),
                     np.stack([-v[:, 1], v[:, 0], zero], axis=-1)], axis=1)


def _exp(rotvec: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotation matrices of rotation vectors (rad), by Rodrigues' formula."""
    rotvec = np.atleast_2d(rotvec)
    angle = np.linalg.norm(rotvec, axis=1)
    unit = rotvec / np.where(angle > 0, angle, 1.0)[:, None]
    k = _skew(unit)
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.asarray(np.eye(3) + s * k + (1 - c) * (k @ k))


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The shortest rotation vector turning unit vector ``a`` onto ``b``."""
    cross = np.cross(a, b)
    sine = np.linalg.norm(cross)
    if sine == 0.0:
        return np.zeros(3)
    return np.asarray(cross / sine * np.arctan2(sine, np.dot(a, b)))


def _cumulative(values: np.ndarray, t_s: np.ndarray) -> np.ndarray:
    """Trapezoidal running integral over time, starting at zero."""
    steps = 0.5 * (values[1:] + values[:-1]) * np.diff(t_s)[:, None]
    return np.vstack([np.zeros((1, values.shape[1])), np.cumsum(steps, axis=0)])
