"""The real application window, offscreen, driven with pytest-qt: STOP from anywhere, the
fault banner, the patient's intensity window, the patient's screen, whole sessions
landing in the record, and output stopped when the window closes, errs or loses its
session process."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from pytestqt.qtbot import QtBot

from controller.record import read_rows
from gui.app import install_error_hook
from gui.main_window import MainWindow

TIMEOUT_MS = 20_000
TICK_S = 0.01
"""The synthetic limb streams at 100 Hz: one sample per control tick."""


@pytest.fixture
def window(qtbot: QtBot, tmp_path: Path) -> Iterator[MainWindow]:
    made = MainWindow(tmp_path / "record.sqlite", settings_dir=tmp_path)
    qtbot.addWidget(made)
    made.show()
    yield made
    made.close()


def delivering(window: MainWindow) -> bool:
    """What the stimulator was last told to deliver, as the session process reports it."""
    assert window.session is not None
    return any(ma > 0 for ma in window.session.last_output_ma.values())


def start_delivering(window: MainWindow, qtbot: QtBot) -> None:
    window.select_protocol("exercise_assisted_toe_raises")  # cued: output within 2 s
    window.start_session()
    qtbot.waitUntil(lambda: delivering(window), timeout=TIMEOUT_MS)


def assert_zero_within_a_tick_of_the_stop(window: MainWindow, source: str) -> None:
    """At the simulated stimulator: it stopped delivering when the stop returned; in the
    record: the emergency stop is latched and the zero command is at most one tick
    after it."""
    stop = window.live.last_stop
    assert stop is not None and stop.source == source
    assert stop.delivering is False, "the simulated stimulator still delivers"
    assert window.session is not None
    summary = window.session.wait(TIMEOUT_MS / 1000)
    assert summary is not None and summary.status == "emergency_stop"
    db = window.db_path
    (fault_t_s,), = read_rows(db, "SELECT t_s FROM faults WHERE kind='emergency_stop'")
    zero_t_s = read_rows(db, "SELECT min(t_s) FROM commands WHERE amplitude_ma = 0 "
                             "AND t_s >= ?", (fault_t_s - TICK_S,))[0][0]
    assert zero_t_s is not None and zero_t_s - fault_t_s <= TICK_S + 1e-9


@pytest.mark.parametrize("key", [Qt.Key.Key_Space, Qt.Key.Key_Escape])
def test_a_stop_key_zeroes_output_at_once_even_from_a_text_field(
        window: MainWindow, qtbot: QtBot, key: Qt.Key) -> None:
    start_delivering(window, qtbot)
    field = window.patient.combo.lineEdit()
    assert field is not None
    field.setFocus()
    qtbot.keyClick(field, key)
    assert window.patient.combo.currentText() == "", "the key stopped output, not typed"
    assert_zero_within_a_tick_of_the_stop(window, "stop key")
    assert ("emergency_stop",) in read_rows(window.db_path, "SELECT kind FROM faults")


def test_the_stop_button_zeroes_output_at_once(window: MainWindow, qtbot: QtBot) -> None:
    start_delivering(window, qtbot)
    qtbot.mouseClick(window.live.stop_button, Qt.MouseButton.LeftButton)
    assert_zero_within_a_tick_of_the_stop(window, "STOP button")


def test_the_patients_stop_button_zeroes_output_at_once(window: MainWindow,
                                                        qtbot: QtBot) -> None:
    window.tabs.setCurrentWidget(window.patient_view)
    start_delivering(window, qtbot)
    qtbot.mouseClick(window.patient_view.stop_button, Qt.MouseButton.LeftButton)
    assert_zero_within_a_tick_of_the_stop(window, "patient STOP")


def test_a_sensor_fault_shows_the_banner_until_reset(window: MainWindow,
                                                    qtbot: QtBot) -> None:
    window.select_protocol("exercise_seated_dorsiflexion")
    window.start_session()
    assert window.session is not None
    window.session.inject_sensor_fault("silent", 0.5, 0.3)
    # Each view hears the status line in a queued call of its own: the second may come a
    # moment after the first.
    qtbot.waitUntil(lambda: window.live.banner.isVisible()
                    and window.patient_view.banner.isVisibleTo(window.patient_view),
                    timeout=TIMEOUT_MS)
    assert "sensor silent" in window.live.banner.text()
    qtbot.wait(1500)
    assert window.live.banner.isVisible(), "latched: it does not clear by itself"
    qtbot.mouseClick(window.live.reset_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.live.banner.isVisible(), timeout=TIMEOUT_MS)


def test_the_patients_intensity_stops_at_the_window_edges(window: MainWindow,
                                                          qtbot: QtBot) -> None:
    window.select_protocol("exercise_seated_dorsiflexion")  # window 10-40 mA, start 20
    window.start_session()

    def setting_ma() -> float | None:
        line = window.live.last_status
        return None if line is None else line.setting_ma[1]

    for _ in range(30):
        qtbot.mouseClick(window.live.plus_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: setting_ma() == 40.0, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.patient_view.plus_button.isEnabled(),
                    timeout=TIMEOUT_MS)
    for _ in range(40):
        qtbot.mouseClick(window.live.minus_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: setting_ma() == 10.0, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.patient_view.minus_button.isEnabled(),
                    timeout=TIMEOUT_MS)
    assert window.patient_view.plus_button.isEnabled()
    qtbot.wait(300)
    assert setting_ma() == 10.0


def test_the_patient_screen_works_from_the_keyboard_alone(window: MainWindow,
                                                          qtbot: QtBot) -> None:
    view = window.patient_view
    said: list[str] = []
    view._speak = said.append
    window.select_protocol("exercise_seated_dorsiflexion")
    window.tabs.setCurrentWidget(view)
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.running, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: view.cue.text().startswith("Lift"), timeout=TIMEOUT_MS)
    assert said and said[-1] == view.cue.text(), "the cue is spoken as it is shown"
    assert view.cue.font().pointSize() >= 48
    qtbot.keyClick(view, Qt.Key.Key_Plus)
    qtbot.waitUntil(lambda: window.live.last_status is not None
                    and window.live.last_status.setting_ma[1] == 21.0, timeout=TIMEOUT_MS)
    qtbot.keyClick(view, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: window.live.last_status is not None
                    and window.live.last_status.paused, timeout=TIMEOUT_MS)
    assert "rep 0 of" in view.progress.text() or "rep 1 of" in view.progress.text()
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: window.summary is not None, timeout=TIMEOUT_MS)
    assert window.summary is not None and window.summary.status == "emergency_stop"
    assert view.start_button.isEnabled()


def test_a_pseudonym_that_is_not_one_is_refused_before_anything_starts(
        window: MainWindow) -> None:
    window.patient.set_pseudonym("Jane Smith")
    assert "not a pseudonym" in window.patient.message.text()
    window.start_session()
    assert window.session is None
    assert "not a pseudonym" in window.outcome.text()


@pytest.mark.parametrize(("stem", "unit_table"), [("peroneal_gait_gyro", "steps"),
                                                  ("exercise_toe_raises", "repetitions")])
def test_a_whole_session_runs_from_the_window_into_the_record(
        qtbot: QtBot, tmp_path: Path, stem: str, unit_table: str) -> None:
    window = MainWindow(tmp_path / "record.sqlite", realtime=False, settings_dir=tmp_path)
    qtbot.addWidget(window)
    window.show()
    window.patient.set_pseudonym("P-017")
    window.select_protocol(stem)
    window.start_session()
    qtbot.waitUntil(lambda: window.summary is not None, timeout=60_000)
    assert window.summary is not None and window.summary.status == "completed"
    assert read_rows(window.db_path, f"SELECT count(*) FROM {unit_table}")[0][0] > 10
    assert read_rows(window.db_path, "SELECT pseudonym FROM patients") == [("P-017",)]
    assert "completed" in window.outcome.text()
    assert window.live.frames > 0, "the live view drew while the session ran"
    window.patient.refresh()
    assert window.patient.combo.findText("P-017") >= 0, "the patient is offered next time"
    window.close()


def test_closing_the_window_stops_output_first_and_keeps_the_record(
        window: MainWindow, qtbot: QtBot) -> None:
    start_delivering(window, qtbot)
    session = window.session
    assert session is not None
    window.close()
    assert session.ended, "the session ended before the window went"
    assert session.last_stop is not None and session.last_stop.delivering is False
    assert read_rows(window.db_path, "SELECT status FROM sessions") == [("emergency_stop",)]


def test_an_error_on_the_gui_thread_stops_output_and_says_so(
        window: MainWindow, qtbot: QtBot) -> None:
    start_delivering(window, qtbot)

    def broken_slot() -> None:
        raise RuntimeError("a bug in a slot")

    with qtbot.capture_exceptions() as raised:
        install_error_hook(window)
        QTimer.singleShot(0, broken_slot)
        qtbot.waitUntil(lambda: window.live.last_stop is not None, timeout=TIMEOUT_MS)
    assert raised, "the error still reaches the default hook"
    assert window.live.last_stop is not None and window.live.last_stop.delivering is False
    assert "output was stopped first" in window.outcome.text()
    assert "a bug in a slot" in window.outcome.text()


def test_a_lost_session_process_is_reported(window: MainWindow, qtbot: QtBot) -> None:
    start_delivering(window, qtbot)
    assert window.session is not None
    os.kill(window.session.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: "Session lost" in window.outcome.text(), timeout=TIMEOUT_MS)
    assert window.start_button.isEnabled()


def test_a_protocol_saved_by_the_therapist_is_offered_for_the_next_session(
        window: MainWindow) -> None:
    window.setup.open(next(Path(window.protocol.itemData(i))
                           for i in range(window.protocol.count())
                           if "seated" in window.protocol.itemText(i)))
    copy = window.setup.duplicate()
    assert copy is not None
    assert Path(window.protocol.currentData()) == copy, "chosen for the next session"
