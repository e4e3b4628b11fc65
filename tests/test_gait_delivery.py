"""What a walking patient gets: every swing stimulated, from the first step, for as long as
they walk, and every way a session could silently stimulate nothing named."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import controller.detect.calibration as calibration_module
from controller.assembly import build_simulated_session
from controller.detect import axis_watch
from controller.detect.calibration import calibrate
from controller.detect.gait import GyroGaitDetector
from controller.devices.recording import load_recording
from controller.machine import GaitMachine
from controller.record import read_rows
from controller.safety_limits import LimitViolation
from controller.scoring.delivery import Swing, bursts_from_commands, score_delivery
from controller.sensor_units import UnitsCheck
from controller.types import GRAVITY_MPS2, FaultKind, GaitEventKind, Sample
from protocols import ProtocolError, load_protocol, parse_protocol
from protocols.loader import dump_protocol, library_protocols
from simulator import BUNDLED_WALK
from simulator.synthetic import synthetic_walk

GAIT = next(p for p in library_protocols() if p.name == "peroneal_gait_gyro.toml")


def _session(tmp_path: Path, samples: list[Sample], **kwargs: object) -> tuple[
        dict[str, object], Path]:
    protocol = load_protocol(GAIT)
    db = tmp_path / "record.sqlite"
    rig = build_simulated_session(protocol, samples, db, source="test", **kwargs)  # type: ignore[arg-type]
    summary = rig.runner().run()
    return summary.as_dict(), db


def _swings(events: list) -> list[Swing]:  # type: ignore[type-arg]
    toe_offs = [e.t_s for e in events if e.kind is GaitEventKind.TOE_OFF]
    strikes = [e.t_s for e in events if e.kind is GaitEventKind.HEEL_STRIKE]
    return [Swing(t, min(s for s in strikes if s > t), True)
            for t in toe_offs if any(s > t for s in strikes)]


@pytest.mark.parametrize("placement", ["foot", "shank"])
def test_a_three_minute_walk_keeps_every_swing_stimulated(tmp_path: Path, placement: str) -> None:
    walk = synthetic_walk(180.0, placement=placement, mounting="random", seed=7)  # type: ignore[arg-type]
    summary, db = _session(tmp_path, walk.samples)
    commands = read_rows(db, "SELECT t_s, amplitude_ma FROM commands ORDER BY rowid")
    bursts = bursts_from_commands([(float(t), float(a)) for t, a in commands],
                                  walk.samples[-1].t_s)
    delivery = score_delivery(_swings(walk.events), bursts)
    assert delivery.swings > 150
    assert delivery.coverage >= 0.97
    assert delivery.not_stimulated <= 0.02 * delivery.swings
    assert delivery.early_stance_bursts == 0
    notices = [k for (k,) in read_rows(db, "SELECT kind FROM notices")]
    assert "duty_cycle_limit" not in notices, "the duty-cycle rule never drops a swing"
    assert summary["status"] == "completed" and summary["warnings"] == []


def test_the_first_step_is_stimulated_with_no_stored_calibration(tmp_path: Path) -> None:
    walk = synthetic_walk(20.0, placement="foot", mounting="random", seed=3)
    _, db = _session(tmp_path, walk.samples)
    first = _swings(walk.events)[0]
    on = read_rows(db, "SELECT MIN(t_s) FROM commands WHERE amplitude_ma > 0")[0][0]
    assert on is not None and on < first.heel_strike_s - 0.5 * (
        first.heel_strike_s - first.toe_off_s), "output on for most of the first swing"


def test_calibration_work_never_runs_inside_a_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    """No batch calibration at all: the axis comes from one 3×3 eigen-decomposition, then
    power-iteration steps; ``calibrate`` (36-45 ms on a warm-up buffer) is never called."""
    calls = {"eigh": 0}
    real_eigh = np.linalg.eigh

    def counting_eigh(matrix: np.ndarray) -> object:
        calls["eigh"] += 1
        return real_eigh(matrix)

    def no_calibrate(*args: object) -> None:
        raise AssertionError("batch calibration inside the loop")

    monkeypatch.setattr(axis_watch.np.linalg, "eigh", counting_eigh)
    monkeypatch.setattr(calibration_module, "calibrate", no_calibrate)
    detector = GyroGaitDetector()
    events = [e for s in synthetic_walk(30.0, seed=5).samples for e in detector.update(s)]
    assert sum(e.kind is GaitEventKind.HEEL_STRIKE for e in events) > 20
    assert calls["eigh"] == 1


def test_a_pivot_step_closes_without_running_into_stance() -> None:
    """A turning step whose sagittal swing is a quarter of a normal one and lands softly:
    the step closes near its heel strike, not at the machine's step limit."""
    walk = synthetic_walk(20.0, seed=11)
    swings = _swings(walk.events)
    pivot = swings[8]
    samples = [
        replace(s, gyro_dps=tuple(0.25 * g for g in s.gyro_dps),  # type: ignore[arg-type]
                acc_mps2=(0.0, 0.0, GRAVITY_MPS2))
        if pivot.toe_off_s - 0.2 <= s.t_s <= pivot.heel_strike_s + 0.1 else s
        for s in walk.samples]
    machine = GaitMachine("heel_off", extension_s=0.1, step_limit_s=1.5)
    detector = GyroGaitDetector()
    for sample in samples:
        for event in detector.update(sample):
            machine.handle(event)
        machine.advance(sample.t_s)
    step = next(s for s in machine.steps if s.start_s <= pivot.heel_strike_s <= s.end_s + 0.5)
    assert step.end_s <= pivot.heel_strike_s + 0.3
    assert all(s.end_s - s.start_s < 1.0 for s in machine.steps)


def test_a_calibration_from_the_other_mounting_is_replaced_from_the_first_strides(
        tmp_path: Path) -> None:
    samples = load_recording(BUNDLED_WALK, "left").samples()
    good = calibrate(samples[:1600])
    turned = replace(good, axis=tuple(-a for a in good.axis))  # type: ignore[arg-type]
    summary, db = _session(tmp_path, samples, calibration=turned)
    notes = [d for (d,) in read_rows(db, "SELECT detail FROM notices WHERE kind='calibration'")]
    assert notes and "does not match this walk" in notes[0]
    first_t = read_rows(db, "SELECT t_s FROM notices WHERE kind='calibration'")[0][0]
    assert first_t < 6.0, "found from the first strides"
    figures = summary
    assert figures["stimulated_steps"] >= 0.9 * figures["steps"]  # type: ignore[operator]


@pytest.mark.parametrize(("scale_gyro", "scale_acc", "message"), [
    (np.pi / 180, 1.0, "rad/s"),
    (1.0, 1 / GRAVITY_MPS2, "reports g"),
])
def test_wrong_units_are_named_and_the_session_does_not_report_completed(
        tmp_path: Path, scale_gyro: float, scale_acc: float, message: str) -> None:
    samples = [Sample(s.t_s, tuple(a * scale_acc for a in s.acc_mps2),  # type: ignore[arg-type]
                      tuple(g * scale_gyro for g in s.gyro_dps))  # type: ignore[arg-type]
               for s in load_recording(BUNDLED_WALK, "left").samples()[:2400]]
    summary, _ = _session(tmp_path, samples)
    faults = summary["faults"]
    assert isinstance(faults, list) and faults[0]["kind"] == FaultKind.IMPLAUSIBLE_VALUE.value
    assert message in str(faults[0]["detail"])
    assert summary["status"] == "faulted"


def test_a_stream_too_slow_for_gait_is_named() -> None:
    check = UnitsCheck(min_rate_hz=50.0)
    problems = [check.observe(k / 20.0, (0.0, 0.0, GRAVITY_MPS2), (0.0, 0.0, 0.0))
                for k in range(60)]
    assert any("streams 20 samples/s" in p for p in problems)


def test_a_burst_that_cannot_hold_its_ramps_is_refused() -> None:
    text = dump_protocol(load_protocol(GAIT)).replace("max_burst_s = 1.5", "max_burst_s = 0.15")
    with pytest.raises(ProtocolError, match="shorter than ramp_up_s"):
        parse_protocol(text)


def test_an_amplitude_below_the_stimulators_step_is_refused(tmp_path: Path) -> None:
    protocol = load_protocol(GAIT)
    channel = protocol.channels[0].model_copy(update={
        "amplitude_min_ma": 0.5, "amplitude_max_ma": 1.5, "amplitude_start_ma": 1.0})
    low = protocol.model_copy(update={"channels": [channel]})
    with pytest.raises(LimitViolation, match="smallest step"):
        build_simulated_session(low, load_recording(BUNDLED_WALK, "left").samples(),
                                tmp_path / "r.sqlite", source="test")
