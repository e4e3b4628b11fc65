"""The synthetic gait generator: plausible shapes, true events, stops and mounting."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from controller.types import GRAVITY_MPS2, GaitEventKind
from simulator.synthetic import synthetic_walk


@pytest.mark.parametrize("placement", ["foot", "shank"])
def test_strides_alternate_toe_off_and_heel_strike_at_the_cadence(placement: str) -> None:
    walk = synthetic_walk(20.0, 100.0, cadence_steps_per_min=110, placement=placement)  # type: ignore[arg-type]
    kinds = [e.kind for e in walk.events]
    assert kinds[0] is GaitEventKind.TOE_OFF
    assert all(a is not b for a, b in pairwise(kinds))
    strikes = [e.t_s for e in walk.events if e.kind is GaitEventKind.HEEL_STRIKE]
    assert np.median(np.diff(strikes)) == pytest.approx(120 / 110, rel=0.05)


def test_foot_signal_has_push_off_swing_peak_and_impact() -> None:
    walk = synthetic_walk(20.0, 200.0, noise_dps=0.0, noise_mps2=0.0)
    t = np.array([s.t_s for s in walk.samples])
    swing_dps = -np.array([s.gyro_dps[1] for s in walk.samples])
    acc_norm = np.linalg.norm([s.acc_mps2 for s in walk.samples], axis=1)
    toe_off = next(e.t_s for e in walk.events if e.kind is GaitEventKind.TOE_OFF)
    strike = next(e.t_s for e in walk.events if e.kind is GaitEventKind.HEEL_STRIKE)
    push = (t > toe_off - 0.1) & (t < toe_off + 0.02)
    swing = (t > toe_off) & (t < strike)
    impact = np.abs(t - strike) < 0.04
    assert swing_dps[push].min() < -300
    assert 250 < swing_dps[swing].max() < 600
    assert acc_norm[impact].max() > 3 * 9.81


def test_shank_signal_is_plausible_for_a_shank() -> None:
    """Sagittal shank rate: swing peak of 250-400 °/s near mid-swing, negative at heel
    strike and in late stance; tilt from about -20° to +30°."""
    walk = synthetic_walk(20.0, 200.0, placement="shank", noise_dps=0.0, noise_mps2=0.0)
    t = np.array([s.t_s for s in walk.samples])
    swing_dps = -np.array([s.gyro_dps[1] for s in walk.samples])
    tilt_deg = np.array([s.angle_deg[1] for s in walk.samples if s.angle_deg is not None])
    toe_offs = [e.t_s for e in walk.events if e.kind is GaitEventKind.TOE_OFF]
    strikes = [e.t_s for e in walk.events if e.kind is GaitEventKind.HEEL_STRIKE]
    for toe_off, strike in zip(toe_offs, strikes, strict=False):
        swing = (t > toe_off) & (t < strike)
        peak_s = t[swing][np.argmax(swing_dps[swing])]
        assert 250 < swing_dps[swing].max() < 400
        assert 0.3 < (peak_s - toe_off) / (strike - toe_off) < 0.7
        assert swing_dps[(t > strike) & (t < strike + 0.1)].min() < -50
        late_stance = swing_dps[(t > toe_off - 0.1) & (t < toe_off)]
        assert late_stance.max() < 0 and late_stance.min() < -150
    assert -25 < tilt_deg.min() < -15 and 25 < tilt_deg.max() < 35


def test_stops_are_still_and_gravity_only() -> None:
    walk = synthetic_walk(20.0, 100.0, stops=[(8.0, 12.0)], noise_dps=0.0, noise_mps2=0.0)
    inside = [s for s in walk.samples if 8.5 < s.t_s < 11.5]
    assert not [e for e in walk.events if 8.0 < e.t_s < 12.0]
    assert max(np.abs(s.gyro_dps).max() for s in inside) < 1e-6
    assert all(abs(np.linalg.norm(s.acc_mps2) - GRAVITY_MPS2) < 1e-6 for s in inside)


def test_random_mounting_turns_the_sagittal_axis_off_the_sensor_axes() -> None:
    walk = synthetic_walk(10.0, 100.0, mounting="random", noise_dps=0.0, seed=7)
    gyro = np.array([s.gyro_dps for s in walk.samples])
    moving = np.linalg.norm(gyro, axis=1) > 50
    _, vectors = np.linalg.eigh(gyro[moving].T @ gyro[moving])
    assert np.abs(vectors[:, -1]).max() < 0.99
    assert np.allclose(walk.mounting @ walk.mounting.T, np.eye(3))


def test_same_seed_same_walk() -> None:
    a = synthetic_walk(8.0, 100.0, seed=3, mounting="random")
    b = synthetic_walk(8.0, 100.0, seed=3, mounting="random")
    assert a.samples == b.samples and a.events == b.events
