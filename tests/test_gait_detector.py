"""The gyro gait detector on the shared recorded walks, resampled walks and synthetic walks.

Floors sit a little below what the detector measures today (see benchmarks/gait_accuracy.py):
they guard against regressions, they are not the project's targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from controller.detect.calibration import CalibrationError, GaitCalibration, calibrate
from controller.detect.gait import GyroGaitDetector
from controller.devices.recording import Recording, ReferenceEvent, load_recording
from controller.machine import GaitMachine
from controller.scoring.gait import evaluate, with_heel_off_reference
from controller.types import GaitEvent, GaitEventKind, Sample
from simulator.synthetic import synthetic_walk

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gait"
needs_data = pytest.mark.skipif(
    not (DATA / "walk1_2x20m_foot_imu.csv").exists(),
    reason=f"shared gait recordings not found at {DATA}",
)
needs_markers = pytest.mark.skipif(
    not (DATA / "walk1_2x20m_mocap_markers.csv").exists(),
    reason=f"walk 1 marker trajectories not found at {DATA}",
)
FEET = ["left", "right"]
MAX_DELAY_S = {GaitEventKind.TOE_OFF: 0.2, GaitEventKind.HEEL_STRIKE: 0.2}
"""Steady-state delay bounds once calibrated. Toe-off: walk 2 has broad push-off peaks
that are only confirmed by the swing onset up to ~160 ms later."""
TOE_OFF_PROMPT_S = 0.05
"""Nine toe-offs in ten must be known within 50 ms, to start stimulation in time."""
HEEL_OFF_LEAD_MAX_FRACTION = 0.3
"""A heel-off may precede its toe-off by at most this fraction of a stride: earlier, the
stimulation would start in mid-stance."""


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
    result = evaluate(_run(recording.samples(), detector), recording)
    strikes = result.main[GaitEventKind.HEEL_STRIKE]
    toe_offs = result.main[GaitEventKind.TOE_OFF]
    assert strikes.sensitivity >= 0.96 and toe_offs.sensitivity >= 0.96
    assert strikes.false == 0 and toe_offs.false == 0
    assert abs(_median(toe_offs.errors_s)) <= 0.010
    # The reference IC (motion capture) sits ~24 ms before the IMU impact in walk 1.
    assert abs(_median(strikes.errors_s)) <= 0.030


@needs_markers
@pytest.mark.parametrize("foot", FEET)
def test_walk1_heel_off_matches_the_heel_marker_reference(foot: str) -> None:
    path = DATA / "walk1_2x20m_foot_imu.csv"
    recording = with_heel_off_reference(load_recording(path, foot), path)
    detector = GyroGaitDetector()
    result = evaluate(_run(recording.samples(), detector), recording)
    heel_offs = result.main[GaitEventKind.HEEL_OFF]
    assert heel_offs.reference >= 25
    assert heel_offs.sensitivity >= 0.96 and heel_offs.false == 0
    assert abs(_median(heel_offs.errors_s)) <= 0.020
    assert float(np.percentile(np.abs(heel_offs.errors_s), 95)) <= 0.035
    assert _median(heel_offs.delays_s) <= 0.020


@needs_data
@pytest.mark.parametrize("name", ["walk1_2x20m", "walk2_4x10m"])
@pytest.mark.parametrize("foot", FEET)
def test_real_walks_give_each_heel_off_its_own_toe_off(name: str, foot: str) -> None:
    events = _run(_load(name, foot).samples())
    heel_offs = [e for e in events if e.kind is GaitEventKind.HEEL_OFF]
    assert len(heel_offs) >= 10
    _assert_one_heel_off_per_stance(events)


@pytest.mark.parametrize("placement", ["foot", "shank"])
@pytest.mark.parametrize("mounting", ["aligned", "random"])
@pytest.mark.parametrize("rate_hz", [50.0, 100.0, 250.0])
def test_synthetic_stances_give_one_late_heel_off(
    placement: str, mounting: str, rate_hz: float
) -> None:
    walk = synthetic_walk(
        30.0, rate_hz, placement=placement, mounting=mounting, seed=int(rate_hz)  # type: ignore[arg-type]
    )
    events = _run(walk.samples)
    _assert_one_heel_off_per_stance(events)
    stride_s = float(np.median(np.diff(_times(walk.events, GaitEventKind.HEEL_STRIKE))))
    leads_s = _heel_off_leads_s(events)
    # Every stance that began with a detected heel strike has its heel-off.
    assert len(leads_s) >= len(_times(events, GaitEventKind.TOE_OFF)) - 2
    assert all(0.0 < lead <= HEEL_OFF_LEAD_MAX_FRACTION * stride_s for lead in leads_s), leads_s


@pytest.mark.parametrize("placement", ["foot", "shank"])
def test_synthetic_walk_drives_the_gait_machine_without_unexpected_events(placement: str) -> None:
    walk = synthetic_walk(30.0, 100.0, placement=placement, mounting="random", seed=11)  # type: ignore[arg-type]
    machine = GaitMachine(start_on="heel_off", extension_s=0.1, step_limit_s=1.5)
    detector = GyroGaitDetector()
    for sample in walk.samples:  # as the session drives it: events, then the clock
        for event in detector.update(sample):
            machine.handle(event)
        machine.advance(sample.t_s)
    assert machine.unexpected_events == 0
    assert len(machine.steps) >= 20


@needs_data
@pytest.mark.parametrize("foot", FEET)
def test_walk2_heel_strikes_match_the_sparse_reference(foot: str) -> None:
    recording = _load("walk2_4x10m", foot)
    detector = GyroGaitDetector()
    result = evaluate(_run(recording.samples(), detector), recording)
    strikes = result.main[GaitEventKind.HEEL_STRIKE]
    assert strikes.sensitivity >= 0.95
    assert _median([abs(e) for e in strikes.errors_s]) <= 0.020


@needs_data
@pytest.mark.parametrize("rate_hz", [50.0, 100.0, 250.0])
def test_walk1_resampled_still_detected(rate_hz: float) -> None:
    recording = _load("walk1_2x20m", "left").resampled(rate_hz)
    detector = GyroGaitDetector()
    result = evaluate(_run(recording.samples(), detector), recording)
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
def test_events_are_causal_with_bounded_delay_from_the_first_step(
    name: str, foot: str, prompt_share: float
) -> None:
    samples = _load(name, foot).samples()
    events = _run(samples, GyroGaitDetector())
    assert all(e.detected_at_s >= e.t_s for e in events)
    steady = events  # no warm-up: nothing is replayed late
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
    result = evaluate(_run(walk.samples, detector), _as_recording(walk))
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


def _times(events: Sequence[GaitEvent | ReferenceEvent], kind: GaitEventKind) -> list[float]:
    return [e.t_s for e in events if e.kind is kind]


def _assert_one_heel_off_per_stance(events: list[GaitEvent]) -> None:
    """Between two heel strikes at most one heel-off, and a toe-off after it."""
    stance: list[GaitEventKind] = []
    for event in events:
        if event.kind is GaitEventKind.HEEL_STRIKE:
            stance = []
        elif event.kind in (GaitEventKind.HEEL_OFF, GaitEventKind.TOE_OFF):
            stance.append(event.kind)
            assert stance.count(GaitEventKind.HEEL_OFF) <= 1, event
            assert stance[0] is GaitEventKind.HEEL_OFF or len(stance) == 1, event


def _heel_off_leads_s(events: list[GaitEvent]) -> list[float]:
    """How long each heel-off comes before the toe-off that follows it."""
    leads_s = []
    heel_off_s: float | None = None
    for event in events:
        if event.kind is GaitEventKind.HEEL_OFF:
            heel_off_s = event.t_s
        elif event.kind is GaitEventKind.TOE_OFF and heel_off_s is not None:
            leads_s.append(event.t_s - heel_off_s)
            heel_off_s = None
    return leads_s


def _as_recording(walk: object) -> Recording:
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
