"""Synthetic walking for the simulator and the tests: IMU samples plus the true events.

The sagittal angular velocity of one stride is built from smooth lobes whose areas follow
the segment's pitch over the gait cycle, so the integrated angle closes stride after
stride and the accelerometer's gravity component stays consistent with the gyroscope:

* foot: heel strike, foot-flat rotation (toes come down), quiet stance, push-off (heel
  rises, toes point down), swing (toes come up), next heel strike;
* shank: heel strike, a short dip as the load comes on, steady rotation over the planted
  foot that speeds up into the pre-swing dip around toe-off, then the swing (peak about
  300 °/s at mid-swing); the tilt runs from about -20° at heel strike to +30° at toe-off.

Positive ``w`` is the swing rotation. In the segment frame (x forward, y left, z up) that
is rotation about -y, as in the foot frame of the shared recordings. The accelerometer
reads gravity (+1 g up) plus a forward swing acceleration, a push-off jolt and a short
impact at each heel strike. ``mounting="random"`` turns the sensor by a random rotation
on the segment, so the sagittal axis is no longer a sensor axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from controller.devices.recording import ReferenceEvent
from controller.types import GRAVITY_MPS2, GaitEventKind, Sample

STANCE_FRACTION = 0.62
"""Toe-off comes at 62 % of the stride in healthy walking at normal speed."""
STRIDE_JITTER = 0.03
AMPLITUDE_JITTER = 0.05
IC_PITCH_DEG = 20.0
"""Pitch at heel strike relative to standing: toes up (foot), ankle ahead of knee (shank)."""
IMPACT_S = 0.012
"""Half-width of the impact transient; its peak lies this long after contact."""

Placement = Literal["foot", "shank"]

# Lobes per placement: (start, end) as fractions of the stride from heel strike, area in
# degrees (the pitch change they make), and the skew exponent of their shape (>1 puts
# the peak late, as the push-off peak sits right before toe-off).
_LOBES: dict[str, list[tuple[float, float, float, float]]] = {
    "foot": [
        (0.00, 0.10, -20.0, 1.0),
        (0.38, STANCE_FRACTION + 0.05, -60.0, 3.5),
        (STANCE_FRACTION + 0.01, 1.00, 80.0, 1.0),
    ],
    # Shank: tilt from about -20° at heel strike to +30° at toe-off and back in swing;
    # the stance lobes overlap, so the forward rotation over the foot never pauses.
    "shank": [
        (0.00, 0.10, -6.0, 1.0),
        (0.04, 0.52, -18.0, 1.0),
        (0.40, STANCE_FRACTION + 0.06, -26.0, 2.5),
        (STANCE_FRACTION + 0.04, 0.98, 50.0, 1.0),
    ],
}
_IMPACT_G = {"foot": 7.0, "shank": 3.0}
_PUSH_OFF_G = {"foot": 1.5, "shank": 0.7}
_SWING_ACC_MPS2 = {"foot": 18.0, "shank": 10.0}


@dataclass(frozen=True)
class SyntheticWalk:
    samples: list[Sample]
    events: list[ReferenceEvent]
    mounting: np.ndarray
    """Rotation from sensor to segment frame (identity when aligned)."""


def synthetic_walk(
    duration_s: float,
    rate_hz: float = 100.0,
    cadence_steps_per_min: float = 105.0,
    placement: Placement = "foot",
    foot: Literal["left", "right"] = "left",
    noise_dps: float = 2.0,
    noise_mps2: float = 0.1,
    stops: list[tuple[float, float]] | None = None,
    mounting: Literal["aligned", "random"] = "aligned",
    seed: int = 0,
) -> SyntheticWalk:
    """Walk for ``duration_s``, standing still at the start, the end and during ``stops``.

    Returns the samples and the true heel strikes and toe-offs of the sensed limb. The
    right foot walks half a stride after the left; sagittal signals are the same for both.
    """
    if placement not in _LOBES:
        raise ValueError(f"placement must be 'foot' or 'shank', not {placement!r}")
    rng = np.random.default_rng(seed)
    stride_s = 2 * 60.0 / cadence_steps_per_min
    t_s = np.arange(0.0, duration_s, 1.0 / rate_hz)
    w_dps = np.zeros_like(t_s)
    acc_segment = np.zeros((len(t_s), 3))
    events: list[ReferenceEvent] = []
    quiet = [(0.0, 1.0), *(stops or []), (duration_s - 1.0, math.inf)]
    start = 1.0 + (0.5 * stride_s if foot == "right" else 0.0)
    while True:
        length = stride_s * (1 + STRIDE_JITTER * rng.standard_normal())
        if start + length > duration_s - 1.0:
            break
        blocked = [b for a, b in quiet if a < start + length and b > start]
        if blocked:
            start = max(blocked)
            continue
        gain = 1 + AMPLITUDE_JITTER * rng.standard_normal()
        _add_stride(t_s, w_dps, acc_segment, events, start, length, gain, placement)
        start += length
    theta_deg = np.concatenate([[0.0], np.cumsum(0.5 * (w_dps[1:] + w_dps[:-1]) * np.diff(t_s))])
    # Segment pitch: rotation by theta about -y turns a world vector by -theta seen from it.
    theta = np.radians(theta_deg)
    up = np.column_stack([np.sin(theta), np.zeros_like(theta), np.cos(theta)])
    forward = np.column_stack([np.cos(theta), np.zeros_like(theta), -np.sin(theta)])
    acc_world = GRAVITY_MPS2 * up
    acc = acc_world + forward * acc_segment[:, :1] + up * acc_segment[:, 2:]
    gyro = np.column_stack([np.zeros_like(w_dps), -w_dps, np.zeros_like(w_dps)])
    rotation = _random_rotation(rng) if mounting == "random" else np.eye(3)
    gyro = gyro @ rotation
    acc = acc @ rotation
    gravity = up @ rotation
    gyro += noise_dps * rng.standard_normal(gyro.shape)
    acc += noise_mps2 * rng.standard_normal(acc.shape)
    roll = np.degrees(np.arctan2(gravity[:, 1], gravity[:, 2]))
    pitch = np.degrees(np.arctan2(-gravity[:, 0], np.hypot(gravity[:, 1], gravity[:, 2])))
    samples = [
        Sample(float(t), (a[0], a[1], a[2]), (g[0], g[1], g[2]), (r, p, 0.0))
        for t, a, g, r, p in zip(
            t_s.tolist(), acc.tolist(), gyro.tolist(), roll.tolist(), pitch.tolist(), strict=True
        )
    ]
    return SyntheticWalk(samples, sorted(events, key=lambda e: e.t_s), rotation)


def _add_stride(
    t_s: np.ndarray,
    w_dps: np.ndarray,
    acc_segment: np.ndarray,
    events: list[ReferenceEvent],
    start_s: float,
    stride_s: float,
    gain: float,
    placement: str,
) -> None:
    """Add one stride that starts and ends at the still, upright mid-stance posture.

    The stride is laid out from heel strike, then shifted so that it begins where the
    integrated pitch crosses zero in stance: stops and starts then join without a jump.
    """
    fine = np.linspace(0.0, 1.0, 2001)
    w_cycle = np.sum([_lobe(fine, *lobe) for lobe in _LOBES[placement]], axis=0) / stride_s
    theta = np.concatenate([[0.0], np.cumsum(0.5 * (w_cycle[1:] + w_cycle[:-1]) * np.diff(fine))])
    upright = np.flatnonzero(
        (fine > 0.1) & (fine < STANCE_FRACTION - 0.1) & (np.abs(stride_s * theta + IC_PITCH_DEG) < 1)
    )
    offset = float(fine[upright[0]])
    phase = (t_s - start_s) / stride_s + offset
    inside = (t_s >= start_s) & (t_s < start_s + stride_s)
    cycle = np.mod(phase[inside], 1.0)
    w_dps[inside] += gain * np.interp(cycle, fine, w_cycle)
    t_strike = start_s + (1.0 - offset) * stride_s
    t_off = start_s + (STANCE_FRACTION - offset) * stride_s
    events.append(ReferenceEvent(GaitEventKind.TOE_OFF, t_off))
    events.append(ReferenceEvent(GaitEventKind.HEEL_STRIKE, t_strike))
    swing_s = (1.0 - STANCE_FRACTION) * stride_s
    swing = (t_s >= t_off) & (t_s < t_off + swing_s)
    acc_segment[swing, 0] += _SWING_ACC_MPS2[placement] * np.sin(
        2 * np.pi * (t_s[swing] - t_off) / swing_s
    )
    for t_event, size_g, axis in (
        (t_off, _PUSH_OFF_G[placement], 0),
        (t_strike + IMPACT_S, _IMPACT_G[placement], 2),
    ):
        near = np.abs(t_s - t_event) < 2 * IMPACT_S
        acc_segment[near, axis] += (
            gain * size_g * GRAVITY_MPS2 * np.cos(np.pi / 4 * (t_s[near] - t_event) / IMPACT_S) ** 2
        )


def _lobe(phase: np.ndarray, start: float, end: float, area_deg: float, skew: float) -> np.ndarray:
    """A smooth one-signed bump on [start, end] whose integral over phase is ``area_deg``."""
    u = np.clip((phase - start) / (end - start), 0.0, 1.0) ** skew
    shape = np.where((phase > start) & (phase < end), 1.0 - np.cos(2 * np.pi * u), 0.0)
    return area_deg * shape / (np.trapezoid(shape, phase) or 1.0)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q
