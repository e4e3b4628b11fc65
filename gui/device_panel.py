"""Where a session's devices are: the simulator (default) or two serial ports.

Ports are listed by ``serial.tools.list_ports`` and can be typed (a pseudo-terminal of
``fes-sim`` is not listed). Probe listens on each chosen port (never writes to a
stimulator) and says what answered; on first contact with a WitMotion IMU it measures
the rate it streams at and, if that is below what the protocol's mode needs, offers to
set 100 Hz. Probing and setting run on a worker thread: the window never freezes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)
from serial.tools import list_ports

from controller.devices.probe import probe
from controller.devices.witmotion_setup import (
    TARGET_RATE_HZ,
    ImuSetupError,
    ImuStream,
    measure,
    set_rate,
)
from controller.sensor_watch import MIN_RATE_HZ


class _Worker(QObject):
    """Runs one job at a time off the GUI thread and hands the text back as a signal."""

    done = Signal(str, object)

    def run(self, job: Callable[[], tuple[str, object]]) -> None:
        def work() -> None:
            try:
                text, result = job()
            except ImuSetupError as exc:
                text, result = str(exc), None
            self.done.emit(text, result)
        threading.Thread(target=work, name="device-probe", daemon=True).start()


class DevicePanel(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.simulator = QRadioButton("Simulator (no hardware)")
        self.serial = QRadioButton("Serial devices")
        self.simulator.setChecked(True)
        self.stimulator_port = QComboBox()
        self.imu_port = QComboBox()
        for combo in (self.stimulator_port, self.imu_port):
            combo.setEditable(True)
            combo.currentTextChanged.connect(lambda _: self.changed.emit())
        self.refresh_button = QPushButton("Refresh ports")
        self.refresh_button.clicked.connect(self.refresh)
        self.probe_button = QPushButton("Probe")
        self.probe_button.clicked.connect(self.probe)
        self.fix_button = QPushButton(f"Set the IMU to {TARGET_RATE_HZ:g} Hz")
        self.fix_button.clicked.connect(self.fix_rate)
        self.fix_button.hide()
        self.report = QLabel("Sessions run on the simulator.")
        self.report.setWordWrap(True)
        self.imu_stream: ImuStream | None = None
        self.needed_rate_hz = MIN_RATE_HZ["gait"]
        self.busy = False
        self._worker = _Worker()
        self._worker.done.connect(self._finished)
        self.simulator.toggled.connect(self._mode_changed)

        ports = QFormLayout()
        ports.addRow("Stimulator (RehaStim 2)", self.stimulator_port)
        ports.addRow("IMU (WitMotion)", self.imu_port)
        buttons = QHBoxLayout()
        for button in (self.refresh_button, self.probe_button, self.fix_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.simulator)
        layout.addWidget(self.serial)
        layout.addLayout(ports)
        layout.addLayout(buttons)
        layout.addWidget(self.report)
        layout.addStretch(1)
        self.refresh()
        self._mode_changed(True)

    def device_urls(self) -> tuple[str | None, str | None]:
        """(stimulator, IMU) as device URLs; (None, None) for the simulator."""
        if self.simulator.isChecked():
            return None, None
        return (f"serial://{self.stimulator_port.currentText().strip()}",
                f"serial://{self.imu_port.currentText().strip()}")

    def refresh(self) -> None:
        found = [info.device for info in list_ports.comports()]
        for combo in (self.stimulator_port, self.imu_port):
            typed = combo.currentText()
            combo.clear()
            combo.addItems(found)
            combo.setEditText(typed)

    def probe(self) -> None:
        stimulator, imu = (self.stimulator_port.currentText().strip(),
                           self.imu_port.currentText().strip())
        if not stimulator or not imu:
            self.report.setText("Choose or type both ports first.")
            return
        needed_hz = self.needed_rate_hz

        def job() -> tuple[str, object]:
            lines = [_said("Stimulator port", stimulator, *probe(stimulator))]
            kind, detail = probe(imu)
            lines.append(_said("IMU port", imu, kind, detail))
            stream = measure(imu) if kind == "witmotion" else None
            if stream is not None:
                lines.append(_rate_text(stream, needed_hz))
            return "\n".join(lines), stream
        self._start(job, "Probing …")

    def fix_rate(self) -> None:
        if self.imu_stream is None:
            return
        imu, found = self.imu_port.currentText().strip(), self.imu_stream
        needed_hz = self.needed_rate_hz

        def job() -> tuple[str, object]:
            stream = set_rate(imu, found)
            return f"IMU set and saved. {_rate_text(stream, needed_hz)}", stream
        self._start(job, f"Setting the IMU to {TARGET_RATE_HZ:g} Hz …")

    def _start(self, job: Callable[[], tuple[str, object]], text: str) -> None:
        self.busy = True
        self.probe_button.setEnabled(False)
        self.fix_button.setEnabled(False)
        self.report.setText(text)
        self._worker.run(job)

    def _finished(self, text: str, stream: object) -> None:
        self.busy = False
        self.report.setText(text)
        self.imu_stream = stream if isinstance(stream, ImuStream) else None
        slow = self.imu_stream is not None and self.imu_stream.rate_hz < self.needed_rate_hz
        self.fix_button.setVisible(slow)
        self.fix_button.setEnabled(True)
        self.probe_button.setEnabled(True)

    def _mode_changed(self, simulated: bool) -> None:
        for widget in (self.stimulator_port, self.imu_port, self.refresh_button,
                       self.probe_button):
            widget.setEnabled(not simulated)
        if simulated:
            self.report.setText("Sessions run on the simulator.")
        self.changed.emit()


def _said(role: str, port: str, kind: str, detail: str) -> str:
    names = {"rehastim2": "a RehaStim 2 answered", "witmotion": "a WitMotion IMU answered"}
    return f"{role} {port}: {names.get(kind, 'nothing recognised')} ({detail})."


def _rate_text(stream: ImuStream, needed_hz: float) -> str:
    verdict = "enough" if stream.rate_hz >= needed_hz else \
        f"too slow: sessions need at least {needed_hz:g} Hz"
    return (f"The IMU streams {stream.rate_hz:.0f} samples a second at {stream.baud} baud: "
            f"{verdict}.")
