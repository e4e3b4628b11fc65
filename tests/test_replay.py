"""Replay: a recorded session re-run through the controller decides exactly as it did,
and a changed controller shows where it now decides otherwise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from controller.assembly.simulated import SimulatedRig, simulate_exercise, simulate_walk
from controller.detect import gait
from controller.detect.calibration import calibrate
from controller.devices.recording import load_recording
from controller.observe import SessionObserver
from controller.record import SessionData, SqliteSource, list_sessions, load_session
from controller.replay import replay
from controller.session import Session
from protocols import load_protocol
from protocols.loader import LIBRARY
from simulator import BUNDLED_WALK
from simulator.motion import MotionFault
from tests.test_cli import fes

GAIT = load_protocol(LIBRARY / "peroneal_gait_gyro.toml")
EXERCISE = load_protocol(LIBRARY / "exercise_seated_dorsiflexion.toml")
Act = Callable[[Session, float], object]


class Operator(SessionObserver):
    """Presses buttons at given session times, as a person at the station would: through
    the session's command queue, taken at the start of the next tick."""

    def __init__(self, session: Session, presses: list[tuple[float, Act]]) -> None:
        self._session = session
        self._presses = sorted(presses, key=lambda press: press[0])

    def on_tick(self, t_s: float) -> None:
        while self._presses and self._presses[0][0] <= t_s:
            _, act = self._presses.pop(0)
            self._session.submit(lambda now, act=act: act(self._session, now))


def recorded(db: Path) -> SessionData:
    source = SqliteSource(db)
    return load_session(source, list_sessions(source)[-1])


def run_with(rig: SimulatedRig, presses: list[tuple[float, Act]]) -> None:
    rig.session.observers.add(Operator(rig.session, presses))
    rig.runner().run()


def test_a_walk_with_a_patient_at_the_buttons_replays_bit_for_bit(tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    rig = simulate_walk(GAIT, db)
    run_with(rig, [(6.0, lambda s, now: s.nudge(now, 1, 2)), (11.0, Session.pause),
                   (14.0, Session.resume),
                   (20.0, lambda s, now: s.emergency_stop(now, "button")),
                   (23.0, Session.reset_faults), (30.0, lambda s, now: s.stop(now, "therapist"))])
    data = recorded(db)
    assert {n.kind for n in data.notices} >= {"nudge", "pause", "resume", "reset", "stop"}
    result = replay(data)
    assert result.identical, result.differences[:3]
    assert result.replayed_counts == result.recorded_counts
    assert result.recorded_counts["commands"] > 100 and result.recorded_counts["events"] > 40


def test_a_walk_started_from_a_stored_calibration_replays_bit_for_bit(tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    walk = load_recording(BUNDLED_WALK, "right")
    rig = simulate_walk(GAIT, db, calibration=calibrate(walk.samples()))
    rig.runner().run()
    data = recorded(db)
    assert data.calibration is not None
    assert replay(data).identical


def test_an_exercise_with_the_limb_answering_the_stimulation_replays_bit_for_bit(
        tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    rig, _ = simulate_exercise(EXERCISE, db, duration_s=40)
    rig.runner().run()
    result = replay(recorded(db))
    assert result.identical, result.differences[:3]
    assert result.recorded_counts["commands"] > 20


def test_a_sensor_that_went_silent_replays_to_the_same_fault(tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    rig = simulate_walk(GAIT, db)
    rig.motion.inject(MotionFault.SILENT, 12.0, 1.0)
    rig.runner().run()
    data = recorded(db)
    assert [f.kind for f in data.faults] == ["sensor_silent"]
    assert replay(data).identical


def test_a_changed_detector_shows_where_it_decides_otherwise(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "record.sqlite"
    simulate_walk(GAIT, db).runner().run()
    monkeypatch.setattr(gait, "PEAK_DROP", 0.2)  # heel strike at the largest impact instead
    result = replay(recorded(db))
    assert not result.identical
    heel_strikes = [d for d in result.differences if d.what == "event"
                    and any(row[2] == "heel_strike" for row in d.recorded + d.replayed)]
    assert heel_strikes, "the moved heel strikes are not among the differences"
    assert all(d.recorded != d.replayed for d in result.differences)


def test_fes_replay_says_identical_and_exits_0_or_lists_the_differences(
        tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    simulate_walk(GAIT, db).runner().run()
    result = fes("replay", "1", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "identical decisions" in result.stdout
    missing = fes("replay", "7", "--db", str(db))
    assert missing.returncode == 2 and "no session matches '7'" in missing.stderr
