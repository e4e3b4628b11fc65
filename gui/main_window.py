"""The application window: choose a patient and a protocol, run a supervised session.

Sessions run on the in-process simulator (the bundled walk for gait, the synthetic limb
for an exercise), paced to the wall clock, off the GUI thread through the runner.

Safety: while a session runs, Space and Escape stop output from anywhere in the window
(an application-wide event filter sees the key before any field does); closing the window
stops output first and waits for the session's record.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QCloseEvent, QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from controller.assembly import SimulatedRig, simulate_walk
from controller.assembly.simulated import simulate_exercise
from controller.machine import STIMULATED
from controller.record import default_db_path
from controller.runner import SessionRunner
from controller.types import SessionSummary
from gui.live_buffer import LiveBuffer
from gui.live_view import LiveSessionWidget
from protocols import ExerciseProtocol, Protocol, load_protocol
from protocols.loader import library_protocols

STOP_KEYS = frozenset({Qt.Key.Key_Space, Qt.Key.Key_Escape})
CLOSE_WAIT_S = 3.0


class MainWindow(QMainWindow):
    def __init__(self, db_path: Path | None = None, realtime: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("FES foot-drop controller — research tool, not a certified "
                            "medical device")
        self.db_path = db_path or default_db_path()
        self.realtime = realtime
        self.rig: SimulatedRig | None = None
        self.runner: SessionRunner | None = None
        self.summary: SessionSummary | None = None

        self.patient = QLineEdit()
        self.patient.setPlaceholderText("pseudonym, e.g. P-017")
        self.protocol = QComboBox()
        for path in library_protocols():
            self.protocol.addItem(path.stem.replace("_", " "), path)
        self.start_button = QPushButton("Start session")
        self.start_button.clicked.connect(self.start_session)
        self.outcome = QLabel("")
        self.outcome.setWordWrap(True)
        setup = QFormLayout()
        setup.addRow("Patient", self.patient)
        setup.addRow("Protocol", self.protocol)
        side = QVBoxLayout()
        side.addLayout(setup)
        side.addWidget(self.start_button)
        side.addWidget(self.outcome, 1)
        self.live = LiveSessionWidget()
        self.live.timer.timeout.connect(self._watch_session)
        body = QHBoxLayout()
        body.addLayout(side, 1)
        body.addWidget(self.live, 3)
        central = QWidget()
        central.setLayout(body)
        self.setCentralWidget(central)
        app = QApplication.instance()
        assert app is not None, "create the QApplication first"
        app.installEventFilter(self)

    # -- sessions ---------------------------------------------------------------------------

    def select_protocol(self, stem: str) -> None:
        index = next(i for i in range(self.protocol.count())
                     if Path(self.protocol.itemData(i)).stem == stem)
        self.protocol.setCurrentIndex(index)

    def start_session(self) -> None:
        if self.runner is not None and self.runner.running:
            return
        protocol = load_protocol(Path(self.protocol.currentData()))
        channels = [ch.channel for ch in protocol.channels]
        buffer = LiveBuffer(channels)
        self.rig = self._rig(protocol, buffer)
        self.runner = self.rig.runner(on_status=self.live.bridge.status.emit)
        self.live.attach(self.runner, buffer, channels, _stimulated_phases(protocol))
        self.summary = None
        self.outcome.setText(f"Running: {protocol.name}")
        self.start_button.setEnabled(False)
        self.runner.start()

    def _rig(self, protocol: Protocol, buffer: LiveBuffer) -> SimulatedRig:
        patient = self.patient.text().strip() or None
        if isinstance(protocol, ExerciseProtocol):
            rig, _ = simulate_exercise(protocol, self.db_path, realtime=self.realtime,
                                       patient=patient, observers=[buffer])
            return rig
        return simulate_walk(protocol, self.db_path, observers=[buffer], patient=patient,
                             realtime=self.realtime)

    def _watch_session(self) -> None:
        runner = self.runner
        if runner is None or runner.running or self.summary is not None:
            return
        self.summary = runner.wait(0)
        self.start_button.setEnabled(True)
        if self.summary is not None:
            figures = ", ".join(f"{self.summary.labels.get(k, k)} {v:g}"
                                for k, v in self.summary.figures.items())
            faults = "; ".join(f"{f['kind']}" for f in self.summary.faults) or "none"
            self.outcome.setText(f"Session {self.summary.session_id}: {self.summary.status}."
                                 f"\n{figures}.\nFaults: {faults}.\n"
                                 f"Recorded in {self.summary.record_path}.")

    # -- safety -----------------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Space and Escape stop output while a session runs, whichever widget has focus."""
        if event.type() in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) and \
                self.runner is not None and self.runner.running and \
                isinstance(event, QKeyEvent) and Qt.Key(event.key()) in STOP_KEYS:
            if event.type() is QEvent.Type.KeyPress:
                self.live.stop("stop key")
            event.accept()
            return True
        return super().eventFilter(watched, event)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Output off first, then the record is finished, then the window goes."""
        if self.runner is not None and self.runner.running:
            self.live.stop("window closed")
            self.runner.wait(CLOSE_WAIT_S)
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
        self.live.timer.stop()
        event.accept()


def _stimulated_phases(protocol: Protocol) -> frozenset[str]:
    """The machine phases in which the protocol wants output (shaded on the live plot)."""
    if isinstance(protocol, ExerciseProtocol):
        return frozenset(protocol.exercise.stimulate)
    phases = {phase.value for phase in STIMULATED}
    if getattr(protocol.trigger, "start_on", "toe_off") == "heel_off":
        phases.add("heel_off")
    return frozenset(phases)
