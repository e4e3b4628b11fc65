"""Calibration: a guided short walk or a few repetitions, reviewed on the plot.

The capture reads motion only (no stimulator is involved): from the IMU chosen in the
device panel, or on the simulator, where a walk is the bundled recording and the
repetitions come from the synthetic limb, which follows the cues this screen gives. While it
runs, the signal is drawn and the session's own detector marks what it finds; the
thresholds (tilt trigger, exercise onset) are lines the therapist drags, and the marks
follow. Accept keeps it with the patient; the next session of that kind uses it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from controller import patient_calibration as calibration
from controller.assembly.simulated import recorded_walk
from controller.assembly.urls import DeviceUrlError, open_motion_sensor
from controller.clock import MonotonicClock
from controller.devices.base import MotionSensor, SensorError
from controller.types import Cue, Sample
from gui.style import font
from protocols import ExerciseProtocol, Protocol
from simulator import BUNDLED_WALK
from simulator.limb import PatientScript, SimulatedLimb

WALK_S = 20.0
REPS = 3
REP_CYCLE_S = 6.0
"""A repetition every 6 s: lift, hold about 2.5 s, lower, rest."""
POLL_MS = 50
REVIEW_EVERY_S = 0.5

SampleSource = Callable[[float], list[Sample]]
"""Samples up to a capture time (seconds from the start of the capture)."""


class CalibrationScreen(QWidget):
    accepted = Signal(object)

    def __init__(self, speed: float = 1.0, walk_s: float = WALK_S,
                 parent: QWidget | None = None) -> None:
        """``speed``: capture time per wall second on the simulator (tests run it faster);
        ``walk_s``: how long a walk is captured."""
        super().__init__(parent)
        self.speed = speed
        self.walk_s = walk_s
        self.imu_url: str | None = None
        self._sensor: MotionSensor | None = None
        self.protocol: Protocol | None = None
        self.db_path: Path | None = None
        self.pseudonym: str | None = None
        self.samples: list[Sample] = []
        self.result: calibration.Review | None = None
        self.thresholds: dict[str, float] = {}
        self._source: SampleSource | None = None
        self._cues: list[tuple[float, str]] = []
        self._started_s = 0.0
        self._reviewed_s = 0.0

        self.instruction = QLabel("Choose a patient and a protocol, then Capture.")
        self.instruction.setFont(font(22, bold=True))
        self.instruction.setWordWrap(True)
        self.state = QLabel("")
        self.state.setWordWrap(True)
        self.plot = pg.PlotWidget(background="w")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("bottom", "capture time (s)")
        self.trace = self.plot.plot(pen=pg.mkPen("#1565c0", width=2))
        self.marks = pg.ScatterPlotItem(size=10, brush=pg.mkBrush("#c62828"))
        self.plot.addItem(self.marks)
        self.lines: dict[str, pg.InfiniteLine] = {}
        self.capture_button = QPushButton("Capture")
        self.capture_button.clicked.connect(self.capture)
        self.accept_button = QPushButton("Accept")
        self.accept_button.clicked.connect(self.accept)
        self.redo_button = QPushButton("Redo")
        self.redo_button.clicked.connect(self.capture)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self._poll)
        buttons = QHBoxLayout()
        for button in (self.capture_button, self.accept_button, self.redo_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.instruction)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.state)
        layout.addLayout(buttons)
        self._enable(capturing=False)

    # -- setup ------------------------------------------------------------------------------

    def prepare(self, protocol: Protocol, db_path: Path, pseudonym: str | None,
                imu_url: str | None = None) -> None:
        """Calibrate ``protocol``'s thresholds for ``pseudonym``, from the IMU at
        ``imu_url`` (None: the simulator)."""
        self._end_capture()
        self.protocol, self.db_path, self.pseudonym = protocol, db_path, pseudonym
        self.imu_url = imu_url
        self._source = None
        self.thresholds = calibration.thresholds_of(protocol)
        for line in self.lines.values():
            self.plot.removeItem(line)
        self.lines = {}
        for name, value in self.thresholds.items():
            line = pg.InfiniteLine(value, angle=0, movable=True,
                                   pen=pg.mkPen("#ef6c00", width=2),
                                   label=f"{name.replace('_', ' ')} {{value:.1f}}",
                                   labelOpts={"position": 0.1, "color": "#ef6c00"})
            line.sigPositionChangeFinished.connect(self._dragged)
            self.plot.addItem(line)
            self.lines[name] = line
        self.plot.setLabel("left", "sagittal angular velocity (°/s)" if not self.thresholds
                           else "angle from rest (°)")
        self.samples, self.result = [], None
        self._show()
        self.instruction.setText(f"Calibrate “{protocol.name}” for {pseudonym or 'no one'}: "
                                 "press Capture.")

    # -- capture ----------------------------------------------------------------------------

    def capture(self) -> None:
        if self.protocol is None:
            return
        exercise = isinstance(self.protocol, ExerciseProtocol)
        self.samples, self.result = [], None
        self._cues = [(1.0 + k * REP_CYCLE_S + offset, text) for k in range(REPS)
                      for offset, text in ((0.0, "Lift"), (2.5, "Lower"))] if exercise else []
        try:
            self._source = self._simulated(exercise) if self.imu_url is None \
                else self._from_imu(self.imu_url)
        except (DeviceUrlError, SensorError, OSError) as exc:
            self.state.setText(f"The IMU cannot be read: {exc}")
            return
        self.instruction.setText(
            f"Do {REPS} full repetitions, one at each “Lift”." if exercise
            else f"Walk at your usual pace for {WALK_S:g} s.")
        self._started_s = time.monotonic()
        self._reviewed_s = 0.0
        self._enable(capturing=True)
        self.timer.start()

    def _simulated(self, exercise: bool) -> SampleSource:
        assert self.protocol is not None
        if not exercise:
            return _paced(recorded_walk(BUNDLED_WALK, self.protocol.leg))
        limb = SimulatedLimb(PatientScript(rom_deg=20.0), lambda: 0.0)
        for at_s, text in self._cues:
            limb.on_cue(Cue(at_s, "start" if text == "Lift" else "lower", text))
        return limb.until

    def _from_imu(self, url: str) -> SampleSource:
        sensor = self._sensor = open_motion_sensor(url, MonotonicClock(POLL_MS / 1000))
        return lambda _: sensor.read()

    @property
    def capture_s(self) -> float:
        return REPS * REP_CYCLE_S + 1.0 if self._cues else self.walk_s

    def _end_capture(self) -> None:
        self.timer.stop()
        if self._sensor is not None:
            self._sensor.close()
            self._sensor = None

    def _poll(self) -> None:
        assert self._source is not None and self.protocol is not None
        speed = self.speed if self._sensor is None else 1.0
        now_s = min((time.monotonic() - self._started_s) * speed, self.capture_s)
        try:
            self.samples += self._source(now_s)
        except SensorError as exc:
            self._end_capture()
            self._enable(capturing=False)
            self.state.setText(f"The IMU stopped: {exc}. Redo the capture.")
            return
        due = [text for at_s, text in self._cues if at_s <= now_s]
        left_s = self.capture_s - now_s
        self.state.setText(f"{due[-1] if due else 'Get ready'} — {left_s:.0f} s left")
        if now_s - self._reviewed_s >= REVIEW_EVERY_S or now_s >= self.capture_s:
            self._reviewed_s = now_s
            self._review()
        if now_s >= self.capture_s:
            self._end_capture()
            self._enable(capturing=False)
            self.instruction.setText("Done. Drag a threshold to see what it would find; "
                                     "Accept or Redo.")

    # -- review -----------------------------------------------------------------------------

    def _dragged(self) -> None:
        self.thresholds = {name: round(float(line.value()), 1)
                           for name, line in self.lines.items()}
        self._review()

    def _review(self) -> None:
        assert self.protocol is not None
        try:
            self.result = calibration.review(self.protocol, self.samples, self.thresholds)
        except ValueError as exc:
            self.result = None
            self.state.setText(f"Threshold refused: {exc}")
        self._show()

    def _show(self) -> None:
        result = self.result
        if result is None or not result.t_s:
            self.trace.setData([], [])
            self.marks.setData([], [])
            return
        start_s = result.t_s[0]
        t = [s - start_s for s in result.t_s]
        values = result.trace_deg or [s.gyro_dps[_main_axis(self.samples)]
                                      for s in self.samples[:len(t)]]
        self.trace.setData(t, values)
        at = {round(s, 3): v for s, v in zip(t, values, strict=True)}
        self.marks.setData([e - start_s for e, _ in result.events],
                           [at.get(round(e - start_s, 3), 0.0) for e, _ in result.events])
        found = ", ".join(f"{sum(k == kind for _, k in result.events)} {kind.replace('_', ' ')}"
                          for kind in dict.fromkeys(k for _, k in result.events))
        self.state.setText(result.problem or f"Found: {found}.")
        self.accept_button.setEnabled(result.problem is None and not self.timer.isActive())

    # -- outcome ----------------------------------------------------------------------------

    def accept(self) -> None:
        if self.result is None or self.protocol is None or self.pseudonym is None or \
                self.db_path is None:
            self.state.setText("Choose a patient (pseudonym) first: a calibration is kept "
                               "with a patient.")
            return
        try:
            calibration.save(self.db_path, self.pseudonym, self.protocol, self.result)
        except ValueError as exc:
            self.state.setText(str(exc))
            return
        self.state.setText(f"Saved for {self.pseudonym}; the next session uses it.")
        self.accepted.emit(self.result)

    def _enable(self, capturing: bool) -> None:
        self.capture_button.setEnabled(not capturing and self.result is None)
        self.redo_button.setEnabled(not capturing and self.result is not None)
        self.accept_button.setEnabled(not capturing and self.result is not None
                                      and self.result.problem is None)


def _paced(recording: list[Sample]) -> SampleSource:
    """A recording handed out as capture time passes."""
    start_s, handed = recording[0].t_s, 0

    def until(now_s: float) -> list[Sample]:
        nonlocal handed
        end = handed
        while end < len(recording) and recording[end].t_s - start_s <= now_s:
            end += 1
        out, handed = recording[handed:end], end
        return out
    return until


def _main_axis(samples: list[Sample]) -> int:
    """The gyro axis that moved most: the sagittal one while walking."""
    spans = [max(abs(s.gyro_dps[k]) for s in samples) if samples else 0.0 for k in range(3)]
    return spans.index(max(spans))
