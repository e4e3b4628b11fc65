"""The live supervised session: plots, counters, the cue, the fault banner, and the controls.

The widget never touches the session directly: the session runs in its own process
(:class:`~controller.session_process.SessionProcess`), commands go to it through a pipe,
status lines arrive on its reader thread and cross to the GUI thread through a queued Qt
signal, and the plots redraw from a :class:`~gui.live_buffer.LiveBuffer` (fed by the
same reader) on a timer at a fixed frame rate.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from controller.machine import STIMULATED
from controller.session_process import SessionProcess, StopAnswer
from controller.types import StatusLine
from gui.live_buffer import SPAN_S, LiveBuffer
from gui.style import big_button, font
from protocols import ExerciseProtocol, Protocol

AXIS_WIDTH_PX = 64
"""The same for every plot, so their time axes line up."""
FRAME_MS = 30
"""About 33 frames a second: a little over the 30 a moving plot needs to look smooth."""


class StatusBridge(QObject):
    """Carries status lines from the loop's thread to the GUI thread (a queued signal)."""

    status = Signal(object)


class LiveSessionWidget(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session: SessionProcess | None = None
        self.last_stop: StopAnswer | None = None
        self.buffer: LiveBuffer | None = None
        self.bridge = StatusBridge()
        self.bridge.status.connect(self.show_status)
        self.last_status: StatusLine | None = None
        self.stimulated_phases: frozenset[str] = frozenset()
        self.duration_s = 0.0

        self.cue = QLabel("")
        self.cue.setFont(font(28, bold=True))
        self.cue.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.status = QLabel("no session")
        self.status.setFont(font(12))
        self.banner = QLabel("")
        self.banner.setStyleSheet("background: #b00020; color: white; padding: 8px;")
        self.banner.setFont(font(14, bold=True))
        self.reset_button = QPushButton("Reset fault")
        for hidden in (self.banner, self.reset_button):
            _keep_place_when_hidden(hidden)
            hidden.hide()
        # Fixed heights: a changing text must not re-lay out (and so repaint) the plots,
        # which would hold the interpreter away from the control loop.
        self.cue.setFixedHeight(56)
        self.status.setFixedHeight(28)
        self.banner.setFixedHeight(44)
        self.reset_button.clicked.connect(self._reset)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._pause)
        self.minus_button = QPushButton("Intensity −1 mA")
        self.minus_button.clicked.connect(lambda: self.nudge(-1))
        self.plus_button = QPushButton("Intensity +1 mA")
        self.plus_button.clicked.connect(lambda: self.nudge(+1))
        self.stop_button = big_button("STOP", "#c62828", points=26)
        self.stop_button.setToolTip("Stops all output at once (also Space or Escape)")
        self.stop_button.clicked.connect(lambda: self.stop("STOP button"))

        self.tilt_plot = _plot("tilt from start (°)")
        self.rate_plot = _plot("angular velocity (°/s)")
        self.output_plot = _plot("output (mA)", dense=False)
        self.tilt_curve = self.tilt_plot.plot(pen=pg.mkPen("#1565c0", width=2))
        self.rate_curve = self.rate_plot.plot(pen=pg.mkPen("#2e7d32", width=2))
        self.output_curves: dict[int, pg.PlotDataItem] = {}
        self.shading = pg.PlotCurveItem(pen=pg.mkPen(None), brush=pg.mkBrush(255, 193, 7, 70))
        self.shading.setZValue(-10)
        self.rate_plot.addItem(self.shading)
        for plot in (self.tilt_plot, self.rate_plot):
            plot.setXLink(self.output_plot)
            plot.hideAxis("bottom")
        self.output_plot.setLabel("bottom", "seconds before now")

        controls = QHBoxLayout()
        for button in (self.pause_button, self.minus_button, self.plus_button):
            controls.addWidget(button)
        banner_row = QHBoxLayout()
        banner_row.addWidget(self.banner, 1)
        banner_row.addWidget(self.reset_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stop_button)
        layout.addLayout(banner_row)
        layout.addWidget(self.cue)
        layout.addWidget(self.status)
        layout.addWidget(self.tilt_plot, 1)
        layout.addWidget(self.rate_plot, 1)
        layout.addWidget(self.output_plot, 1)
        layout.addLayout(controls)

        self.timer = QTimer(self)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(self.redraw)
        self.frames = 0

    # -- wiring a session -------------------------------------------------------------------

    def attach(self, session: SessionProcess, buffer: LiveBuffer, protocol: Protocol) -> None:
        """Show ``session``, which runs ``protocol``."""
        self.session, self.buffer = session, buffer
        self.duration_s = protocol.session.duration_s
        self.last_stop = None
        self.stimulated_phases = stimulated_phases(protocol)
        self.pause_button.setChecked(False)
        self.cue.setText("Walk at your own pace" if protocol.mode == "gait" else "")
        self.banner.hide()
        self.reset_button.hide()
        self.output_plot.clear()
        self.shading.setVisible(False)
        for plot in (self.tilt_plot, self.rate_plot):
            plot.setYRange(0, 1, padding=0)
        top_ma = max(ch.amplitude_max_ma for ch in protocol.channels)
        self.output_plot.setYRange(0, 1.1 * top_ma, padding=0)
        colours = ["#c62828", "#6a1b9a", "#ef6c00", "#00838f"]
        self.output_curves = {
            ch.channel: self.output_plot.plot(pen=pg.mkPen(colours[i % len(colours)], width=2),
                                              name=f"ch{ch.channel}")
            for i, ch in enumerate(protocol.channels)}
        self.timer.start()

    def stop(self, source: str) -> None:
        """Output off now, whatever the loop is doing; the session ends and is recorded."""
        if self.session is not None and self.session.running:
            self.last_stop = self.session.emergency_stop(source)

    # -- status from the loop ---------------------------------------------------------------

    def show_status(self, line: StatusLine) -> None:
        self.last_status = line
        output = "  ".join(f"ch{ch} {line.output_ma[ch]:.0f} / {line.setting_ma[ch]:g} mA"
                           for ch in line.output_ma)
        paused = "  PAUSED" if line.paused else ""
        remaining_s = max(self.duration_s - line.elapsed_s, 0.0)
        self.status.setText(f"{_clock(line.elapsed_s)} elapsed, {_clock(remaining_s)} left   "
                            f"{line.phase}   {line.counts_text}{self._countdown(line.t_s)}"
                            f"   {output}{paused}")
        if line.latched:
            fault = line.latched[0]
            self.banner.setText(f"Output stopped: {fault.kind.value.replace('_', ' ')} — "
                                f"{fault.detail}")
            self.banner.show()
            self.reset_button.show()
        else:
            self.banner.hide()
            self.reset_button.hide()

    def _countdown(self, now_s: float) -> str:
        """Seconds left of a timed cue (hold, rest, set break)."""
        cue = self.buffer.snapshot_cue() if self.buffer is not None else None
        if cue is None or cue.duration_s is None:
            return ""
        return f"   {cue.kind.replace('_', ' ')} {max(cue.t_s + cue.duration_s - now_s, 0):.0f} s"

    # -- drawing ----------------------------------------------------------------------------

    def redraw(self) -> None:
        """One frame. The x axis is time before now (fixed), and a y range only grows, so
        the axes are painted once and cached; only the curves change from frame to frame
        (repainting the axes of a scrolling plot was two thirds of the frame's time)."""
        if self.buffer is None:
            return
        snap = self.buffer.snapshot()
        self.frames += 1
        if snap.cue is not None:
            self.cue.setText(snap.cue.text)
        if not len(snap.t_s):
            return
        end_s = float(snap.t_s[-1])
        ago_s = snap.t_s - end_s
        self.tilt_curve.setData(ago_s, snap.tilt_deg)
        self.rate_curve.setData(ago_s, snap.rate_dps)
        _grow_y_range(self.tilt_plot, snap.tilt_deg)
        _grow_y_range(self.rate_plot, snap.rate_dps)
        if len(snap.command_t_s):
            edges_s = np.append(snap.command_t_s, end_s) - end_s
            for ch, curve in self.output_curves.items():
                curve.setData(edges_s, snap.command_ma[ch], stepMode="center")
        self._shade(snap.phases, end_s)

    def _shade(self, phases: list[tuple[float, str]], end_s: float) -> None:
        """The stimulated phases as one stepped, filled band behind the angular velocity."""
        bottom, top = self.rate_plot.getViewBox().viewRange()[1]
        self.shading.setVisible(bool(phases))
        if not phases:
            return
        edges_s = np.array([t for t, _ in phases] + [end_s]) - end_s
        levels = np.array([top if phase in self.stimulated_phases else bottom
                           for _, phase in phases])
        self.shading.setData(edges_s, levels, stepMode="center", fillLevel=bottom)

    # -- controls ---------------------------------------------------------------------------

    def _reset(self) -> None:
        if self.session is not None:
            self.session.reset_faults()

    def _pause(self, paused: bool) -> None:
        if self.session is None:
            return
        self.pause_button.setText("Resume" if paused else "Pause")
        (self.session.pause if paused else self.session.resume)()

    def nudge(self, steps: int) -> None:
        if self.session is not None:
            self.session.nudge_all(steps)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


def _keep_place_when_hidden(widget: QWidget) -> None:
    policy = widget.sizePolicy()
    policy.setRetainSizeWhenHidden(True)
    widget.setSizePolicy(policy)


def stimulated_phases(protocol: Protocol) -> frozenset[str]:
    """The machine phases in which the protocol wants output (shaded on the plot)."""
    if isinstance(protocol, ExerciseProtocol):
        return frozenset(protocol.exercise.stimulate)
    phases = {phase.value for phase in STIMULATED}
    if getattr(protocol.trigger, "start_on", "toe_off") == "heel_off":
        phases.add("heel_off")
    return frozenset(phases)


def _grow_y_range(plot: pg.PlotWidget, values: np.ndarray) -> None:
    """Widen the y range to hold ``values`` (with a margin); never narrow it while a
    session runs, so the axis does not change, and need repainting, every frame."""
    if not len(values):
        return
    low, high = plot.getViewBox().viewRange()[1]
    lowest, highest = float(np.nanmin(values)), float(np.nanmax(values))
    if lowest < low or highest > high:
        margin = 0.15 * max(highest - lowest, high - low, 1.0)
        plot.setYRange(min(low, lowest - margin), max(high, highest + margin), padding=0)


def _plot(label: str, dense: bool = True) -> pg.PlotWidget:
    """A plot of the last :data:`SPAN_S` seconds; a dense one (a sensor stream) draws only
    what is in view, thinned to the screen's resolution. The stimulation steps are few
    and drawn as they are."""
    plot = pg.PlotWidget(background="w")
    plot.setLabel("left", label)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setMouseEnabled(x=False, y=False)
    plot.disableAutoRange()
    plot.getAxis("left").setWidth(AXIS_WIDTH_PX)
    plot.setXRange(-SPAN_S, 0, padding=0)
    if dense:
        plot.setClipToView(True)
        plot.setDownsampling(auto=True, mode="peak")
    return plot
