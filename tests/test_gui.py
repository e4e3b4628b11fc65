"""The real application window, offscreen, driven with pytest-qt: STOP from anywhere, the
fault banner, the patient's intensity window, and whole sessions landing in the record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from controller.record import read_rows
from gui.main_window import MainWindow
from simulator.motion import MotionFault

TIMEOUT_MS = 20_000


@pytest.fixture
def window(qtbot: QtBot, tmp_path: Path) -> Iterator[MainWindow]:
    made = MainWindow(tmp_path / "record.sqlite")
    qtbot.addWidget(made)
    made.show()
    yield made
    made.close()


def delivering(window: MainWindow) -> bool:
    assert window.rig is not None
    return window.rig.stimulator.model.is_delivering


@pytest.mark.parametrize("key", [Qt.Key.Key_Space, Qt.Key.Key_Escape])
def test_a_stop_key_zeroes_output_at_once_even_from_a_text_field(
        window: MainWindow, qtbot: QtBot, key: Qt.Key) -> None:
    window.select_protocol("exercise_assisted_toe_raises")  # cued: output within 2 s
    window.start_session()
    qtbot.waitUntil(lambda: delivering(window), timeout=TIMEOUT_MS)
    window.patient.setFocus()
    qtbot.keyClick(window.patient, key)
    assert not delivering(window), "output is off when the key press returns"
    assert window.patient.text() == "", "the key stopped output instead of typing"
    qtbot.waitUntil(lambda: window.summary is not None, timeout=TIMEOUT_MS)
    assert window.summary is not None and window.summary.status == "emergency_stop"
    faults = read_rows(window.db_path, "SELECT kind FROM faults")
    assert ("emergency_stop",) in faults


def test_the_stop_button_zeroes_output_at_once(window: MainWindow, qtbot: QtBot) -> None:
    window.select_protocol("exercise_assisted_toe_raises")
    window.start_session()
    qtbot.waitUntil(lambda: delivering(window), timeout=TIMEOUT_MS)
    qtbot.mouseClick(window.live.stop_button, Qt.MouseButton.LeftButton)
    assert not delivering(window)


def test_a_sensor_fault_shows_the_banner_until_reset(window: MainWindow,
                                                    qtbot: QtBot) -> None:
    window.select_protocol("exercise_seated_dorsiflexion")
    window.start_session()
    assert window.rig is not None
    window.rig.motion.inject(MotionFault.SILENT, window.rig.clock.now() + 0.5, 0.3)
    qtbot.waitUntil(window.live.banner.isVisible, timeout=TIMEOUT_MS)
    assert "sensor silent" in window.live.banner.text()
    qtbot.wait(1500)
    assert window.live.banner.isVisible(), "latched: it does not clear by itself"
    qtbot.mouseClick(window.live.reset_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.live.banner.isVisible(), timeout=TIMEOUT_MS)


def test_the_patients_intensity_stops_at_the_window_edges(window: MainWindow,
                                                          qtbot: QtBot) -> None:
    window.select_protocol("exercise_seated_dorsiflexion")  # window 10-40 mA, start 20
    window.start_session()
    assert window.rig is not None
    supervisor = window.rig.session.supervisor
    for _ in range(30):
        qtbot.mouseClick(window.live.plus_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: supervisor.setting_ma(1) == 40.0, timeout=TIMEOUT_MS)
    for _ in range(40):
        qtbot.mouseClick(window.live.minus_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: supervisor.setting_ma(1) == 10.0, timeout=TIMEOUT_MS)
    qtbot.wait(200)
    assert supervisor.setting_ma(1) == 10.0


@pytest.mark.parametrize(("stem", "unit_table"), [("peroneal_gait_gyro", "steps"),
                                                  ("exercise_toe_raises", "repetitions")])
def test_a_whole_session_runs_from_the_window_into_the_record(
        qtbot: QtBot, tmp_path: Path, stem: str, unit_table: str) -> None:
    window = MainWindow(tmp_path / "record.sqlite", realtime=False)
    qtbot.addWidget(window)
    window.show()
    window.patient.setText("P-017")
    window.select_protocol(stem)
    window.start_session()
    qtbot.waitUntil(lambda: window.summary is not None, timeout=60_000)
    assert window.summary is not None and window.summary.status == "completed"
    assert read_rows(window.db_path, f"SELECT count(*) FROM {unit_table}")[0][0] > 10
    assert read_rows(window.db_path, "SELECT count(*) FROM patients")[0][0] == 1
    assert "completed" in window.outcome.text()
    assert window.live.frames > 0, "the live view drew while the session ran"
    window.close()
