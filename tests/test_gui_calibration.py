"""Calibration, offscreen with pytest-qt and in the store: a guided capture on the
simulator, thresholds dragged on the plot with the marks following, accept and redo,
and the next session of that patient using what was kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from controller import patient_calibration as calibration
from controller.assembly.simulated import recorded_walk
from gui.calibration_screen import CalibrationScreen
from gui.main_window import MainWindow
from protocols import ExerciseProtocol, Protocol, load_protocol
from protocols.loader import library_protocols
from simulator import BUNDLED_WALK
from tests.sim_process import running_simulator
from tests.test_end_to_end import SIM_ARGS

CAPTURE_MS = 20_000
SPEED = 25.0
"""Capture time per wall second: a 20 s walk in under a second."""


def protocol(stem: str) -> Protocol:
    return load_protocol(next(p for p in library_protocols() if p.stem == stem))


@pytest.fixture
def screen(qtbot: QtBot) -> CalibrationScreen:
    made = CalibrationScreen(speed=SPEED)
    qtbot.addWidget(made)
    made.show()
    return made


def captured(screen: CalibrationScreen, qtbot: QtBot) -> calibration.Review:
    qtbot.mouseClick(screen.capture_button, Qt.MouseButton.LeftButton)
    assert screen.timer.isActive()
    qtbot.waitUntil(lambda: not screen.timer.isActive(), timeout=CAPTURE_MS)
    assert screen.result is not None
    return screen.result


def drag(screen: CalibrationScreen, name: str, value: float) -> None:
    """What letting go of a dragged line does: move it, then say the drag finished."""
    line = screen.lines[name]
    line.setValue(value)
    line.sigPositionChangeFinished.emit(line)


def test_a_few_reps_are_captured_marked_and_follow_the_dragged_onset(
        screen: CalibrationScreen, qtbot: QtBot, tmp_path: Path) -> None:
    seated = protocol("exercise_seated_dorsiflexion")
    screen.prepare(seated, tmp_path / "r.sqlite", "P-017")
    result = captured(screen, qtbot)
    assert [kind for _, kind in result.events].count("at_rest") == 3
    assert len(screen.marks.data) == len(result.events) > 0, "the events are marked"
    assert screen.accept_button.isEnabled()
    first_onset_s = next(t for t, kind in result.events if kind == "onset")
    drag(screen, "onset_threshold_deg", 8.0)
    assert screen.result is not None and screen.result.thresholds["onset_threshold_deg"] == 8
    assert next(t for t, k in screen.result.events if k == "onset") > first_onset_s, \
        "a higher onset threshold finds the onset later"
    drag(screen, "onset_threshold_deg", 15.0)  # above half the 20° movement
    assert screen.result is not None and screen.result.problem is not None
    assert not screen.accept_button.isEnabled(), "nothing to keep"
    drag(screen, "onset_threshold_deg", 6.0)
    qtbot.mouseClick(screen.accept_button, Qt.MouseButton.LeftButton)
    stored = calibration.latest(tmp_path / "r.sqlite", "P-017", seated)
    assert stored is not None and stored.thresholds == {"onset_threshold_deg": 6.0}
    qtbot.mouseClick(screen.redo_button, Qt.MouseButton.LeftButton)
    assert screen.timer.isActive() and not screen.samples, "redo starts a new capture"


def test_a_tilt_threshold_dragged_changes_what_is_found(
        screen: CalibrationScreen, qtbot: QtBot, tmp_path: Path) -> None:
    screen.prepare(protocol("peroneal_gait_tilt"), tmp_path / "r.sqlite", "P-017")
    before = captured(screen, qtbot)
    assert before.problem is None
    drag(screen, "tilt_heel_off_deg", 59.0)
    assert screen.result is not None and screen.result.events != before.events


def test_a_walk_calibration_is_used_by_the_patients_next_session(
        qtbot: QtBot, tmp_path: Path) -> None:
    def stimulated_share(patient: str) -> float:
        window.patient.set_pseudonym(patient)
        window.select_protocol("peroneal_gait_gyro")
        window.start_session()
        qtbot.waitUntil(lambda: window.summary is not None, timeout=60_000)
        assert window.summary is not None
        figures = window.summary.figures
        return figures["stimulated_steps"] / figures["steps"]

    window = MainWindow(tmp_path / "r.sqlite", realtime=False, settings_dir=tmp_path)
    qtbot.addWidget(window)
    window.calibration.speed = SPEED
    window.patient.set_pseudonym("P-017")
    window.select_protocol("peroneal_gait_gyro")
    window.tabs.setCurrentWidget(window.calibration)
    result = captured(window.calibration, qtbot)
    assert result.gait is not None and result.problem is None
    qtbot.mouseClick(window.calibration.accept_button, Qt.MouseButton.LeftButton)
    window.tabs.setCurrentIndex(0)
    calibrated = stimulated_share("P-017")
    assert "P-017's calibration" in window.outcome.text()
    uncalibrated = stimulated_share("P-018")
    assert calibrated == uncalibrated == 1.0, "stimulated from the first step either way"


def test_a_stored_calibration_belongs_to_one_patient_and_one_kind(tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    tilt = protocol("peroneal_gait_tilt")
    walk = recorded_walk(BUNDLED_WALK, "left")[:2000]
    kept = calibration.review(tilt, walk, {"tilt_heel_off_deg": 10.0})
    calibration.save(db, "P-017", tilt, kept)
    stored = calibration.latest(db, "P-017", tilt)
    assert stored is not None and stored.thresholds["tilt_heel_off_deg"] == 10.0
    assert calibration.latest(db, "P-018", tilt) is None
    assert calibration.latest(db, "P-017", protocol("peroneal_gait_gyro")) is None
    applied = calibration.apply(tilt, stored.thresholds)
    assert applied.trigger.tilt_heel_off_deg == 10.0  # type: ignore[union-attr]
    assert applied.model_copy(update={"trigger": tilt.trigger}) == tilt, "nothing else moved"


def test_a_threshold_the_schema_does_not_allow_is_refused(tmp_path: Path) -> None:
    seated = protocol("exercise_seated_dorsiflexion")
    assert isinstance(seated, ExerciseProtocol)
    with pytest.raises(ValueError, match="onset_threshold_deg.*less than or equal to 30"):
        calibration.apply(seated, {"onset_threshold_deg": 45.0})
    with pytest.raises(ValueError, match="not a threshold"):
        calibration.apply(seated, {"tilt_heel_off_deg": 5.0})
    nothing = calibration.review(seated, recorded_walk(BUNDLED_WALK, "left")[:300])
    assert nothing.problem is not None
    with pytest.raises(ValueError, match="not saved"):
        calibration.save(tmp_path / "r.sqlite", "P-017", seated, nothing)


def test_a_walk_is_captured_from_the_serial_imu(qtbot: QtBot, tmp_path: Path) -> None:
    """The IMU chosen in the device panel: fes-sim streams a walk over a pseudo-terminal."""
    screen = CalibrationScreen(walk_s=8.0)
    qtbot.addWidget(screen)
    with running_simulator(tmp_path, *SIM_ARGS) as sim:
        screen.prepare(protocol("peroneal_gait_gyro"), tmp_path / "r.sqlite", "P-017",
                       f"serial://{sim.imu}")
        result = captured(screen, qtbot)
    assert len(screen.samples) > 600, "8 s at 100 Hz from the serial driver"
    assert result.problem is None and result.gait is not None
    assert [kind for _, kind in result.events].count("heel_strike") >= 4


def test_an_imu_that_cannot_be_opened_is_said_plainly(screen: CalibrationScreen,
                                                       tmp_path: Path) -> None:
    screen.prepare(protocol("peroneal_gait_gyro"), tmp_path / "r.sqlite", "P-017",
                   "serial:///dev/no-such-imu")
    screen.capture()
    assert "cannot be read" in screen.state.text() and "no-such-imu" in screen.state.text()
    assert not screen.timer.isActive()
