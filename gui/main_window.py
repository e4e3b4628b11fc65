"""The application window: pick a patient and a protocol, run a supervised session, and
the therapist's and the patient's screens around it, as tabs.

A session runs in its own process (:class:`~controller.session_process.SessionProcess`),
on the simulator unless devices were chosen, paced to the wall clock; the window only
sends it commands and draws what it reports.

Safety: while a session runs, Space and Escape stop output from anywhere in the window
(an application-wide event filter sees the key before any field does). Closing the
window stops output first and waits for the session's record; an error on the GUI
thread stops output and says so; a session process that dies is reported as lost.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from controller import patient_calibration
from controller.record import default_db_path
from controller.sensor_watch import MIN_RATE_HZ
from controller.session_process import SessionProcess, SessionSpec, SessionStartError
from controller.types import SessionSummary, StatusLine
from gui.calibration_screen import CalibrationScreen
from gui.device_panel import DevicePanel
from gui.live_buffer import LiveBuffer
from gui.live_view import LiveSessionWidget
from gui.patient_picker import PatientPicker
from gui.patient_view import PatientView
from gui.pin_store import PinStore
from gui.protocol_setup import ProtocolSetup, clinic_protocols
from gui.review_screen import ReviewScreen
from protocols import Protocol, load_protocol
from protocols.loader import ProtocolError, library_protocols

STOP_KEYS = frozenset({Qt.Key.Key_Space, Qt.Key.Key_Escape})
CLOSE_WAIT_S = 3.0
WATCH_MS = 100


class MainWindow(QMainWindow):
    def __init__(self, db_path: Path | None = None, realtime: bool = True,
                 settings_dir: Path | None = None, clinic_url: str | None = None) -> None:
        """``settings_dir``: where the clinic's protocols and the PIN live (default: the
        user's data and configuration folders); ``clinic_url``: the clinic database the
        Review tab can read."""
        super().__init__()
        self.setWindowTitle("FES foot-drop controller — research tool, not a certified "
                            "medical device")
        self.db_path = db_path or default_db_path()
        self.realtime = realtime
        self.session: SessionProcess | None = None
        self.summary: SessionSummary | None = None
        self.protocol_in_use: Protocol | None = None
        self.calibration_note = ""
        self.time_ticks = False
        """Have the session measure how late its ticks run (benchmarks/gui_load.py)."""

        self.setup = ProtocolSetup(
            settings_dir / "protocols" if settings_dir else None,
            PinStore(settings_dir / "therapist_pin.json") if settings_dir else None)
        self.patient = PatientPicker(self.db_path)
        self.protocol = QComboBox()
        self.refresh_protocols()
        self.setup.saved.connect(self._protocol_saved)
        self.start_button = QPushButton("Start session")
        self.start_button.clicked.connect(self.start_session)
        self.outcome = QLabel("")
        self.outcome.setWordWrap(True)
        self.outcome.setAlignment(Qt.AlignmentFlag.AlignTop)
        setup = QFormLayout()
        setup.addRow("Patient", self.patient)
        setup.addRow("Protocol", self.protocol)
        side = QVBoxLayout()
        side.addLayout(setup)
        side.addWidget(self.start_button)
        side.addWidget(self.outcome, 1)
        self.live = LiveSessionWidget()
        self.live.bridge.status.connect(self._show_status)
        session_tab = QWidget()
        body = QHBoxLayout(session_tab)
        body.addLayout(side, 1)
        body.addWidget(self.live, 3)

        self.patient_view = PatientView()
        self.patient_view.start_requested.connect(self.start_session)
        self.patient_view.stop_requested.connect(self.live.stop)
        self.patient_view.pause_toggled.connect(self.live.pause_button.setChecked)
        self.patient_view.nudge_requested.connect(self.live.nudge)

        self.tabs = QTabWidget()
        self.tabs.addTab(session_tab, "Session")
        self.tabs.addTab(self.patient_view, "Patient view")
        self.tabs.addTab(self.setup, "Protocols")
        self.calibration = CalibrationScreen()
        self.tabs.addTab(self.calibration, "Calibration")
        self.devices = DevicePanel()
        self.tabs.addTab(self.devices, "Devices")
        self.review = ReviewScreen(self.db_path, clinic_url)
        self.tabs.addTab(self.review, "Review")
        self.tabs.currentChanged.connect(self._tab_shown)
        self.protocol.currentIndexChanged.connect(self._protocol_chosen)
        self.setCentralWidget(self.tabs)

        self._watch = QTimer(self)
        self._watch.setInterval(WATCH_MS)
        self._watch.timeout.connect(self._watch_session)
        app = QApplication.instance()
        assert app is not None, "create the QApplication first"
        app.installEventFilter(self)

    # -- protocols --------------------------------------------------------------------------

    def refresh_protocols(self) -> None:
        """The bundled library and the clinic's own protocols, in the chooser."""
        current = self.protocol.currentData()
        self.protocol.clear()
        for path in [*library_protocols(), *clinic_protocols(self.setup.clinic_folder)]:
            self.protocol.addItem(path.stem.replace("_", " "), path)
        if current is not None:
            self.select_protocol(Path(current).stem)

    def _tab_shown(self) -> None:
        """The calibration screen works on the patient and protocol chosen now; the review
        lists what was recorded until now, for the patient chosen now."""
        if self.tabs.currentWidget() is self.review:
            self.review.refresh(self.patient.combo.currentText().strip() or None)
        if self.tabs.currentWidget() is not self.calibration or self.calibration.timer.isActive():
            return
        try:
            protocol = load_protocol(Path(self.protocol.currentData()))
            patient = self.patient.pseudonym()
        except (ProtocolError, ValueError) as exc:
            self.calibration.instruction.setText(str(exc))
            return
        self.calibration.prepare(protocol, self.db_path, patient,
                                 self.devices.device_urls()[1])

    def _protocol_chosen(self) -> None:
        path = self.protocol.currentData()
        try:
            mode = load_protocol(Path(path)).mode if path is not None else "gait"
        except ProtocolError as exc:
            self.outcome.setText(str(exc))
            return
        self.devices.needed_rate_hz = MIN_RATE_HZ[mode]

    def _protocol_saved(self, path: Path) -> None:
        self.refresh_protocols()
        self.select_protocol(path.stem)

    def select_protocol(self, stem: str) -> None:
        index = next((i for i in range(self.protocol.count())
                      if Path(self.protocol.itemData(i)).stem == stem), -1)
        if index >= 0:
            self.protocol.setCurrentIndex(index)

    # -- sessions ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.session is not None and self.session.running

    def start_session(self) -> None:
        if self.running:
            return
        try:
            patient = self.patient.pseudonym()
        except ValueError as exc:
            self.outcome.setText(str(exc))
            return
        try:
            protocol = load_protocol(Path(self.protocol.currentData()))
        except ProtocolError as exc:
            self.outcome.setText(f"The protocol cannot be used: {exc}")
            return
        stored = patient_calibration.latest(self.db_path, patient, protocol) \
            if patient else None
        if stored is not None:
            protocol = patient_calibration.apply(protocol, stored.thresholds)
        buffer = LiveBuffer([ch.channel for ch in protocol.channels])
        stimulator_url, imu_url = self.devices.device_urls()
        spec = SessionSpec(protocol, self.db_path, patient=patient,
                           stimulator_url=stimulator_url, imu_url=imu_url,
                           realtime=self.realtime, time_ticks=self.time_ticks,
                           calibration=stored.gait if stored else None)
        self.session = SessionProcess(spec, observers=[buffer],
                                      on_status=self.live.bridge.status.emit)
        self.live.attach(self.session, buffer, protocol)
        self.patient_view.prepare(protocol)
        self.protocol_in_use = protocol
        self.summary = None
        self.outcome.setText(f"Starting: {protocol.name} …")
        self.start_button.setEnabled(False)
        try:
            self.session.start()
        except SessionStartError as exc:
            self.outcome.setText(f"The session could not start: {exc}")
            self.start_button.setEnabled(True)
            return
        self.calibration_note = (f"With {patient}'s calibration of {stored.created_at}."
                                 if stored else "")
        self.outcome.setText(f"Running: {protocol.name}"
                             + (f" for {patient}" if patient else "")
                             + f". {self.calibration_note}")
        self.patient_view.set_running(True)
        self._watch.start()

    def _show_status(self, line: StatusLine) -> None:
        self.patient_view.show_status(line)

    def _watch_session(self) -> None:
        session = self.session
        if self.live.buffer is not None:
            self.patient_view.show_cue(self.live.buffer.snapshot_cue())
        if session is None or not session.ended:
            return
        self._watch.stop()
        self.summary = session.summary
        self.start_button.setEnabled(True)
        self.outcome.setText(f"{_outcome_text(session)}\n{self.calibration_note}".strip())
        self.patient_view.show_end("Session over. Well done." if self.summary is not None
                                   and self.summary.status == "completed"
                                   else "Session stopped.")

    def stop_everything(self, source: str) -> None:
        """Output off now, whatever else is happening (keys, closing, GUI errors)."""
        if self.running:
            self.live.stop(source)

    # -- safety -----------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Space and Escape stop output while a session runs, whichever widget has focus."""
        if event.type() in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) and \
                self.running and isinstance(event, QKeyEvent) and \
                Qt.Key(event.key()) in STOP_KEYS:
            if event.type() is QEvent.Type.KeyPress:
                self.stop_everything("stop key")
            event.accept()
            return True
        return super().eventFilter(watched, event)

    def gui_failed(self, description: str) -> None:
        """An error escaped on the GUI thread: stop output first, then say so."""
        self.stop_everything("error in the window")
        self.outcome.setText(f"An error occurred in the window; output was stopped first.\n"
                             f"{description}")

    def closeEvent(self, event: QCloseEvent) -> None:
        """Output off first, then the record is finished, then the window goes."""
        if self.session is not None and self.running:
            self.stop_everything("window closed")
            self.session.wait(CLOSE_WAIT_S)
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        self.live.timer.stop()
        self._watch.stop()
        event.accept()


def _outcome_text(session: SessionProcess) -> str:
    summary = session.summary
    if summary is None:
        why = session.killed_for or session.error or "the session process ended unexpectedly"
        return (f"Session lost: {why}. Output stopped with it (a stimulator stops when its "
                "host goes away); the record may be incomplete.")
    figures = ", ".join(f"{summary.labels.get(k, k)} {v:g}" for k, v in summary.figures.items())
    faults = "; ".join(f"{f['kind']}" for f in summary.faults) or "none"
    return (f"Session {summary.session_id}: {summary.status}.\n{figures}.\n"
            f"Faults: {faults}.\nRecorded in {summary.record_path}.")

