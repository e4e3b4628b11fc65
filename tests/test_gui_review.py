"""The review screen, offscreen with pytest-qt, on real records made by the simulator:
the list is the record's (and the chosen patient's), a session fills its plot and one row
per step or repetition, an interrupted session is marked, the report and export buttons
write files, and a missing, empty or garbage record is said plainly, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from controller.assembly.simulated import simulate_exercise, simulate_walk
from controller.clinic.sync import sync_to_postgres
from controller.record import SessionInfo, SqliteSource, list_sessions, load_session
from gui import review_screen
from gui.main_window import MainWindow
from gui.review_screen import ALL_PATIENTS, ReviewScreen
from gui.session_table import SESSION_HEADINGS, STEP_LEAD_S
from protocols import ExerciseProtocol, load_protocol
from protocols.loader import library_protocols

TIMEOUT_MS = 20_000
CRASH_AT_S = 8.0
CRASH = f"""
import os, sys
from pathlib import Path
from controller.assembly.simulated import simulate_walk
from controller.observe import SessionObserver
from controller.record import read_rows
from protocols import load_protocol
from tests.sim_process import wait_for

class Crash(SessionObserver):
    '''The process dies mid-walk, once what it recorded so far is on the disk.'''
    def on_tick(self, t_s):
        if t_s >= {CRASH_AT_S}:
            record = rig.session.record
            record.flush()
            wait_for(lambda: (read_rows(record.path, "SELECT MAX(t_s) FROM samples WHERE "
                                        "session_id = ?", (record.session_id,))[0][0]
                              or 0.0) >= t_s - 0.1)
            os._exit(1)

rig = simulate_walk(load_protocol(Path(sys.argv[1])), Path(sys.argv[2]), patient="P-002",
                    observers=[Crash()])
rig.runner().run()
"""


def library(stem: str) -> Path:
    return next(p for p in library_protocols() if p.stem == stem)


def exercise(stem: str) -> ExerciseProtocol:
    protocol = load_protocol(library(stem))
    assert isinstance(protocol, ExerciseProtocol)
    return protocol


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """P-001 walked and exercised, P-002's walk was interrupted (its process died), and
    P-002 then exercised."""
    db = tmp_path_factory.mktemp("review") / "record.sqlite"
    simulate_walk(load_protocol(library("peroneal_gait_gyro")), db,
                  patient="P-001").runner().run()
    rig, _ = simulate_exercise(exercise("exercise_seated_dorsiflexion"), db, patient="P-001",
                               duration_s=30)
    rig.runner().run()
    subprocess.run([sys.executable, "-c", CRASH, str(library("peroneal_gait_gyro")), str(db)],
                   check=False, timeout=60, cwd=Path(__file__).parent.parent)
    rig, _ = simulate_exercise(exercise("exercise_toe_raises"), db, patient="P-002",
                               duration_s=30)
    rig.runner().run()
    return db


def column(heading: str) -> int:
    return SESSION_HEADINGS.index(heading)


def make_screen(qtbot: QtBot, db: Path, clinic_url: str | None = None) -> ReviewScreen:
    screen = ReviewScreen(db, clinic_url)
    qtbot.addWidget(screen)
    screen.resize(1400, 900)
    screen.show()
    return screen


def listed(qtbot: QtBot, db: Path, count: int) -> ReviewScreen:
    screen = make_screen(qtbot, db)
    screen.refresh()
    qtbot.waitUntil(lambda: screen.session_model.rowCount() == count, timeout=TIMEOUT_MS)
    return screen


def recorded(db: Path, patient: str | None = None) -> list[SessionInfo]:
    return list_sessions(SqliteSource(db), patient)


def shown(screen: ReviewScreen, qtbot: QtBot, info: SessionInfo) -> None:
    screen.select_session(info)
    qtbot.waitUntil(lambda: screen.loaded is not None and screen.loaded.info == info,
                    timeout=TIMEOUT_MS)


def test_the_list_is_every_session_of_the_record_newest_first(qtbot: QtBot,
                                                               record: Path) -> None:
    infos = recorded(record)
    screen = listed(qtbot, record, len(infos))
    assert [i.uuid for i in screen.infos] == [i.uuid for i in reversed(infos)]
    assert [row[column("Steps / reps")] for row in screen.session_model.rows] == \
        [i.units_text for i in reversed(infos)]
    assert screen.message.text() == ""


def test_choosing_a_patient_lists_only_their_sessions(qtbot: QtBot, record: Path) -> None:
    screen = listed(qtbot, record, len(recorded(record)))
    assert [screen.patient.itemText(i) for i in range(screen.patient.count())] == \
        [ALL_PATIENTS, "P-001", "P-002"]
    screen.patient.setCurrentText("P-001")
    assert [i.uuid for i in screen.infos] == \
        [i.uuid for i in reversed(recorded(record, "P-001"))]
    assert {row[column("Patient")] for row in screen.session_model.rows} == {"P-001"}


@pytest.mark.parametrize("mode", ["gait", "exercise"])
def test_a_chosen_session_shows_its_plot_and_one_row_per_step_or_repetition(
        qtbot: QtBot, record: Path, mode: str) -> None:
    screen = listed(qtbot, record, len(recorded(record)))
    info = next(i for i in screen.infos if i.mode == mode and i.status == "completed")
    shown(screen, qtbot, info)
    data = load_session(SqliteSource(record), info)
    units = data.steps if mode == "gait" else data.repetitions
    assert len(units) > 0
    assert screen.unit_model.rowCount() == len(units)
    assert screen.session_plot.canvas is not None
    assert screen.unit_model.headings[0] == ("Step" if mode == "gait" else "Set")
    assert screen.unit_model.rows[0][0] == "1", "counted from 1, as the cues count"


def test_choosing_a_step_moves_the_plots_detail_window_to_it(qtbot: QtBot,
                                                             record: Path) -> None:
    screen = listed(qtbot, record, len(recorded(record)))
    info = next(i for i in screen.infos if i.mode == "gait" and i.status == "completed")
    shown(screen, qtbot, info)
    assert screen.loaded is not None
    step = screen.loaded.steps[20]
    screen.units.selectRow(20)

    def detail_starts_s() -> list[float]:
        canvas = screen.session_plot.canvas
        return [] if canvas is None else [ax.get_xlim()[0] for ax in canvas.figure.axes]

    qtbot.waitUntil(lambda: any(abs(t - (step["start_s"] - STEP_LEAD_S)) < 1e-6
                                for t in detail_starts_s()), timeout=TIMEOUT_MS)


def test_an_interrupted_session_is_marked_in_the_list_and_when_shown(
        qtbot: QtBot, record: Path) -> None:
    screen = listed(qtbot, record, len(recorded(record)))
    row, info = next((r, i) for r, i in enumerate(screen.infos) if i.patient == "P-002"
                     and i.mode == "gait")
    assert info.status == "interrupted"
    assert "interrupted" in screen.session_model.rows[row][column("Status")]
    assert screen.session_model.warnings[row] is not None
    shown(screen, qtbot, info)
    assert screen.warning.isVisible() and "stopped before the end" in screen.warning.text()
    assert 0 < screen.unit_model.rowCount() < 32, "the steps recorded before it stopped"


def test_a_session_is_read_off_the_gui_thread(qtbot: QtBot, record: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A half-hour session takes seconds to read: the window must not wait for it."""
    readers: list[threading.Thread] = []

    def watched(*args: object) -> object:
        readers.append(threading.current_thread())
        return load_session(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(review_screen, "load_session", watched)
    screen = listed(qtbot, record, len(recorded(record)))
    shown(screen, qtbot, screen.infos[0])
    assert readers and threading.main_thread() not in readers


def test_the_report_button_writes_the_chosen_patients_report(
        qtbot: QtBot, record: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_: str(tmp_path))
    screen = listed(qtbot, record, len(recorded(record)))
    screen.patient.setCurrentText("P-001")
    assert screen.files.report_button.text() == "Report on P-001…"
    screen.files.report_button.click()
    qtbot.waitUntil(lambda: bool(screen.files.written), timeout=TIMEOUT_MS)
    names = {p.name for p in screen.files.written}
    assert {"report.html", "report.pdf", "progress-P-001.png"} <= names
    assert all((tmp_path / name).is_file() for name in names)
    assert str(tmp_path) in screen.files.outcome.text()
    assert not screen.files.busy.isVisible()


@pytest.mark.parametrize("label", ["CSV", "Parquet"])
def test_export_writes_one_folder_per_selected_session(
        qtbot: QtBot, record: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        label: str) -> None:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_: str(tmp_path))
    screen = listed(qtbot, record, len(recorded(record)))
    screen.select_session(screen.infos[1])
    screen.files.format.setCurrentText(label)
    assert screen.files.export_button.text() == "Export 1 session…"
    screen.files.export_button.click()
    qtbot.waitUntil(lambda: bool(screen.files.written), timeout=TIMEOUT_MS)
    (folder,) = screen.files.written
    assert folder.parent == tmp_path
    assert (folder / f"samples.{label.lower()}").is_file()


def test_the_progress_tab_draws_the_chosen_patients_progress(qtbot: QtBot,
                                                             record: Path) -> None:
    screen = listed(qtbot, record, len(recorded(record)))
    screen.views.setCurrentWidget(screen.progress_plot)
    assert "Choose a patient" in screen.progress_plot.message.text()
    screen.patient.setCurrentText("P-001")
    qtbot.waitUntil(lambda: screen.progress_plot.canvas is not None, timeout=TIMEOUT_MS)


@pytest.mark.parametrize("content", [None, b""], ids=["missing", "empty"])
def test_a_record_without_sessions_says_so(qtbot: QtBot, tmp_path: Path,
                                           content: bytes | None) -> None:
    db = tmp_path / "record.sqlite"
    if content is not None:
        db.write_bytes(content)
    screen = make_screen(qtbot, db)
    screen.refresh()
    qtbot.waitUntil(lambda: screen.refresh_button.isEnabled(), timeout=TIMEOUT_MS)
    assert screen.session_model.rowCount() == 0
    assert "No sessions recorded yet" in screen.message.text()
    assert not screen.files.export_button.isEnabled()
    assert not screen.files.report_button.isEnabled()


def test_a_file_that_is_not_a_record_is_said_plainly_without_a_traceback(
        qtbot: QtBot, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "record.sqlite"
    db.write_bytes(b"these are notes, not a session record\n" * 200)
    screen = make_screen(qtbot, db)
    screen.refresh()
    qtbot.waitUntil(lambda: "cannot be read" in screen.message.text(), timeout=TIMEOUT_MS)
    assert "not a session record" in screen.message.text()
    assert screen.session_model.rowCount() == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err


def test_the_review_tab_lists_the_record_for_the_patient_chosen_for_sessions(
        qtbot: QtBot, record: Path, tmp_path: Path) -> None:
    window = MainWindow(record, settings_dir=tmp_path)
    qtbot.addWidget(window)
    window.show()
    window.patient.set_pseudonym("P-002")
    window.tabs.setCurrentWidget(window.review)
    expected = [i.uuid for i in reversed(recorded(record, "P-002"))]
    qtbot.waitUntil(lambda: [i.uuid for i in window.review.infos] == expected,
                    timeout=TIMEOUT_MS)
    window.close()


def test_the_review_tab_reads_the_clinic_database_when_chosen(
        qtbot: QtBot, record: Path, tmp_path: Path, clinic_url: str) -> None:
    """A second station's sessions, synced to the clinic, show beside none of this one's."""
    other_station = tmp_path / "other.sqlite"
    simulate_walk(load_protocol(library("peroneal_gait_gyro")), other_station,
                  patient="P-009").runner().run()
    sync_to_postgres(other_station, clinic_url, station="ward-2")
    screen = make_screen(qtbot, record, clinic_url)
    screen.refresh()
    qtbot.waitUntil(lambda: screen.session_model.rowCount() == len(recorded(record)),
                    timeout=TIMEOUT_MS)
    screen.store.setCurrentIndex(1)
    qtbot.waitUntil(lambda: screen.session_model.rowCount() == 1, timeout=TIMEOUT_MS)
    [clinic_session] = screen.infos
    assert clinic_session.patient == "P-009"
    shown(screen, qtbot, clinic_session)
    assert screen.unit_model.rowCount() == clinic_session.steps > 20
