"""The gyro gait detector on the shared recorded walks, resampled walks and synthetic walks.

Floors sit a little below what the detector measures today (see benchmarks/gait_accuracy.py):
they guard against regressions, they are not the project's targets.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.gait_accuracy import evaluate, resample
from controller.detect.calibration import CalibrationError, GaitCalibration, calibrate
from controller.detect.gait import GyroGaitDetector
from controller.devices.recording import Recording, load_recording
from controller.types import GaitEvent, GaitEventKind, Sample
from simulator.synthetic import synthetic_walk

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gait"
needs_data = pytest.mark.skipif(
    not (DATA / "walk1_2x20m_foot_imu.csv").exists(),
    reason=f"shared gait recordings not found at {DATA}",
)
FEET = ["left", "right"]
MAX_DELAY_S = {GaitEventKind.TOE_OFF: 0.2, GaitEventKind.HEEL_STRIKE: 0.2}
"""Steady-state delay bounds once calibrated. Toe-off: walk 2 has broad push-off peaks
that are only confirmed by the swing onset up to ~160 ms later."""
TOE_OFF_PROMPT_S = 0.05
"""Nine toe-offs in ten must be known within 50 ms, to start stimulation in time."""


def _load(name: str, foot: str) -> Recording:
    return load_recording(DATA / f"{name}_foot_imu.csv", foot)


def _run(samples: list[Sample], detector: GyroGaitDetector | None = None) -> list[GaitEvent]:
    detector = detector or GyroGaitDetector()
    return [event for sample in samples for event in detector.update(sample)]


@needs_data
@pytest.mark.parametrize("foot", FEET)
def test_walk1_finds_heel_strikes_and_toe_offs_without_false_events(foot: str) -> None:
    recording = _load("walk1_2x20m", foot)
    detector = GyroGaitDetector()
    result = evaluate((_run(recording.samples(), detector), detector.calibrated_at_s), recording)
    strikes = result.main[GaitEventKind.HEEL_STRIKE]
    toe_offs = result.main[GaitEventKind.TOE_OFF]
    assert strikes.sensitivity >= 0.96 and toe_offs.sensitivity >= 0.96
    assert strikes.false == 0 and toe_offs.false == 0
    assert abs(_median(toe_offs.errors_s)) <= 0.010
    # The reference IC (motion capture) sits ~24 ms before the IMU impact in walk 1.
    assert abs(_median(strikes.errors_s)) <= 0.030


@needs_data
@pytest.mark.parametrize("foot", FEET)
def test_walk2_heel_strikes_match_the_sparse_reference(foot: str) -> None:
    recording = _load("walk2_4x10m", foot)
    detector = GyroGaitDetector()
    result = evaluate((_run(recording.samples(), detector), detector.calibrated_at_s), recording)
    strikes = result.main[GaitEventKind.HEEL_STRIKE]
    assert strikes.sensitivity >= 0.95
    assert _median([abs(e) for e in strikes.errors_s]) <= 0.015


@needs_data
@pytest.mark.parametrize("rate_hz", [50.0, 100.0, 250.0])
def test_walk1_resampled_still_detected(rate_hz: float) -> None:
    recording = resample(_load("walk1_2x20m", "left"), rate_hz)
    detector = GyroGaitDetector()
    result = evaluate((_run(recording.samples(), detector), detector.calibrated_at_s), recording)
    for kind in (GaitEventKind.HEEL_STRIKE, GaitEventKind.TOE_OFF):
        score = result.main[kind]
        assert score.sensitivity >= 0.96, kind
        assert score.false is not None and score.false <= 1, kind
        assert abs(_median(score.errors_s)) <= 0.045, kind


@needs_data
def test_samples_one_at_a_time_or_in_blocks_give_the_same_events() -> None:
    samples = _load("walk1_2x20m", "right").samples()
    one_by_one = _run(samples)
    detector = GyroGaitDetector()
    in_blocks: list[GaitEvent] = []
    for start in range(0, len(samples), 37):
        block = samples[start : start + 37]
        in_blocks += [event for sample in block for event in detector.update(sample)]
    assert one_by_one == in_blocks
    assert len(one_by_one) > 100


@needs_data
@pytest.mark.parametrize(
    ("name", "foot", "prompt_share"),
    # Walk 2's push-off peaks are broad: the rebound that confirms them comes ~80-120 ms
    # later. It has no toe-off reference to tell whether the peak or the rebound is right.
    [("walk1_2x20m", "left", 0.9), ("walk2_4x10m", "right", 0.0)],
)
def test_events_are_causal_with_bounded_delay_after_calibration(
    name: str, foot: str, prompt_share: float
) -> None:
    samples = _load(name, foot).samples()
    detector = GyroGaitDetector()
    events = _run(samples, detector)
    calibrated_at_s = detector.calibrated_at_s
    assert calibrated_at_s is not None
    assert all(e.detected_at_s >= e.t_s for e in events)
    steady = [e for e in events if e.detected_at_s > calibrated_at_s]
    for event in steady:
        if event.kind in MAX_DELAY_S:
            assert event.detected_at_s - event.t_s <= MAX_DELAY_S[event.kind], event
    toe_off_delays_s = [e.detected_at_s - e.t_s for e in steady if e.kind is GaitEventKind.TOE_OFF]
    prompt = [d for d in toe_off_delays_s if d <= TOE_OFF_PROMPT_S]
    assert toe_off_delays_s and len(prompt) >= prompt_share * len(toe_off_delays_s)


@needs_data
def test_calibration_from_a_walk_detects_from_the_first_step_and_round_trips() -> None:
    recording = _load("walk1_2x20m", "left")
    calibration = calibrate(recording.samples()[: int(8 * recording.rate_hz)])
    assert GaitCalibration.from_dict(calibration.to_dict()) == calibration
    detector = GyroGaitDetector(calibration)
    events = _run(recording.samples(), detector)
    assert detector.calibrated_at_s is None
    first_toe_off = next(e for e in events if e.kind is GaitEventKind.TOE_OFF)
    assert first_toe_off.detected_at_s - first_toe_off.t_s < 0.05


def test_calibration_refuses_standing_still() -> None:
    still = [Sample(i / 100, (0.0, 0.0, 9.81), (0.5, -0.3, 0.2)) for i in range(500)]
    with pytest.raises(CalibrationError, match="hardly moves"):
        calibrate(still)


def test_calibration_dict_names_the_missing_field() -> None:
    data = GaitCalibration((0.0, 1.0, 0.0), 350.0, 400.0, 60.0, 1.1).to_dict()
    del data["stride_s"]
    with pytest.raises(ValueError, match="stride_s"):
        GaitCalibration.from_dict(data)


@pytest.mark.parametrize("placement", ["foot", "shank"])
@pytest.mark.parametrize("rate_hz", [50.0, 100.0, 200.0])
def test_synthetic_walk_with_random_mounting_is_detected(placement: str, rate_hz: float) -> None:
    walk = synthetic_walk(
        30.0, rate_hz, placement=placement, mounting="random", seed=int(rate_hz)  # type: ignore[arg-type]
    )
    detector = GyroGaitDetector()
    result = evaluate((_run(walk.samples, detector), detector.calibrated_at_s), _as_recording(walk))
    for kind in (GaitEventKind.HEEL_STRIKE, GaitEventKind.TOE_OFF):
        score = result.main[kind]
        assert score.sensitivity >= 0.95, kind
        assert score.false == 0, kind
        assert abs(_median(score.errors_s)) <= 0.03, kind


@pytest.mark.parametrize("placement", ["foot", "shank"])
def test_stops_produce_still_and_no_swing_events(placement: str) -> None:
    stop = (12.0, 17.0)
    walk = synthetic_walk(30.0, 100.0, placement=placement, stops=[stop], seed=5)  # type: ignore[arg-type]
    events = _run(walk.samples)
    last_step_s = max(e.t_s for e in walk.events if e.t_s < stop[0])
    during = [e for e in events if last_step_s + 0.05 < e.t_s < stop[1] - 0.05]
    assert [e.kind for e in during] == [GaitEventKind.STILL]
    after = [e.kind for e in events if e.t_s > stop[1]]
    assert GaitEventKind.TOE_OFF in after and GaitEventKind.HEEL_STRIKE in after


def test_reset_keeps_the_learned_calibration() -> None:
    walk = synthetic_walk(15.0, 100.0, seed=2)
    detector = GyroGaitDetector()
    _run(walk.samples, detector)
    learned = detector.calibration
    detector.reset()
    assert learned is not None and detector.calibration == learned


def _as_recording(walk: object) -> Recording:
    import numpy as np

    samples = walk.samples  # type: ignore[attr-defined]
    return Recording(
        "synthetic",
        "left",
        np.array([s.t_s for s in samples]),
        np.array([s.acc_mps2 for s in samples]),
        np.array([s.gyro_dps for s in samples]),
        list(walk.events),  # type: ignore[attr-defined]
    )


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    assert ordered, "no matched events"
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else 0.5 * (ordered[middle - 1] + ordered[middle])
