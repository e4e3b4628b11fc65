"""The tilt-threshold trigger: tilt estimate, thresholds, hysteresis, causality."""

from __future__ import annotations

from itertools import pairwise

import pytest

from controller.detect.calibration import calibrate
from controller.detect.tilt import TiltTrigger
from controller.types import GaitEvent, GaitEventKind, Sample
from simulator.synthetic import synthetic_walk


def _run(trigger: TiltTrigger, samples: list[Sample]) -> list[GaitEvent]:
    return [event for sample in samples for event in trigger.update(sample)]


@pytest.mark.parametrize("use_angles", [True, False])
@pytest.mark.parametrize("placement", ["foot", "shank"])
def test_heel_off_precedes_toe_off_and_heel_strike_alternates(
    placement: str, use_angles: bool
) -> None:
    walk = synthetic_walk(30.0, 100.0, placement=placement, mounting="random", seed=4)  # type: ignore[arg-type]
    samples = walk.samples if use_angles else [
        Sample(s.t_s, s.acc_mps2, s.gyro_dps) for s in walk.samples
    ]
    events = _run(TiltTrigger(15.0, 10.0), samples)
    kinds = [e.kind for e in events]
    assert all(a is not b for a, b in pairwise(kinds))
    toe_offs = [e.t_s for e in walk.events if e.kind is GaitEventKind.TOE_OFF]
    heel_offs = [e.t_s for e in events if e.kind is GaitEventKind.HEEL_OFF]
    assert len(heel_offs) >= len(toe_offs) - 1
    for toe_off in toe_offs[1:]:
        before = [t for t in heel_offs if toe_off - 0.4 < t <= toe_off + 0.02]
        assert before, f"no heel-off shortly before the toe-off at {toe_off:.2f} s"


def test_thresholds_are_relative_to_standing_and_in_degrees() -> None:
    walk = synthetic_walk(20.0, 100.0, placement="shank", seed=1)
    calibration = calibrate(walk.samples)
    low = _run(TiltTrigger(10.0, 5.0, calibration), walk.samples)
    high = _run(TiltTrigger(60.0, 5.0, calibration), walk.samples)
    assert any(e.kind is GaitEventKind.HEEL_OFF for e in low)
    assert not high, "the shank never leans 60° back: no event"


def test_events_are_causal_and_come_at_the_crossing() -> None:
    walk = synthetic_walk(20.0, 100.0, seed=6)
    events = _run(TiltTrigger(15.0, 10.0, calibrate(walk.samples)), walk.samples)
    assert events
    assert all(0.0 <= e.detected_at_s - e.t_s <= 0.011 for e in events)


def test_thresholds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TiltTrigger(-5.0, 5.0)
