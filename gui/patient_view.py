"""The patient's screen: what to do now, in type readable from 2 m, and a few big buttons.

The patient can start, pause, stop and nudge the intensity in 1 mA steps; nothing else.
The ± buttons grey out at the edges of the therapist's window (the supervisor refuses a
nudge past them anyway). Every control has a key: Enter starts, P pauses or resumes,
+ and − nudge, Space and Escape stop (those two are caught by the main window from any
widget). A new cue also sounds: a beep, and the words spoken where the system has a
speech command.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QGridLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from controller.types import Cue, StatusLine
from gui.style import big_button, font
from protocols import Protocol

CUE_POINTS = 54
"""Cap height about 14 mm on a 24-inch full-HD screen: legible from 2 m and more."""
SPEECH_COMMANDS = (("spd-say", "--wait"), ("espeak-ng",), ("espeak",), ("say",))
"""Text-to-speech commands tried in order (speech-dispatcher, eSpeak NG, macOS)."""


def find_speech_command() -> list[str] | None:
    for command in SPEECH_COMMANDS:
        if shutil.which(command[0]):
            return list(command)
    return None


class PatientView(QWidget):
    start_requested = Signal()
    stop_requested = Signal(str)
    pause_toggled = Signal(bool)
    nudge_requested = Signal(int)

    def __init__(self, speak: Callable[[str], None] | None = None,
                 parent: QWidget | None = None) -> None:
        """``speak``: how a cue is said aloud (default: the system's speech command, if
        any, else only a beep)."""
        super().__init__(parent)
        self._speech = find_speech_command()
        self._speak = speak or self._say
        self._window_ma: tuple[float, float] | None = None
        self._last_cue: Cue | None = None
        self.spoken: list[str] = []

        self.cue = QLabel("Press Start when you are ready")
        self.cue.setFont(font(CUE_POINTS, bold=True))
        self.cue.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.cue.setWordWrap(True)
        self.cue.setMinimumHeight(220)
        self.progress = QLabel("")
        self.progress.setFont(font(30))
        self.progress.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.intensity = QLabel("")
        self.intensity.setFont(font(26))
        self.intensity.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.banner = QLabel("")
        self.banner.setFont(font(24, bold=True))
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.banner.setStyleSheet("background: #b00020; color: white; padding: 10px;")
        self.banner.setWordWrap(True)
        self.banner.hide()

        self.start_button = big_button("Start  (Enter)", "#2e7d32")
        self.pause_button = big_button("Pause  (P)", "#455a64")
        self.pause_button.setCheckable(True)
        self.minus_button = big_button("−  1 mA", "#1565c0")
        self.plus_button = big_button("+  1 mA", "#1565c0")
        self.stop_button = big_button("STOP  (Space)", "#c62828", points=34)
        self.sound = QCheckBox("Sound and spoken cues")
        self.sound.setFont(font(14))
        self.sound.setChecked(True)

        self.start_button.clicked.connect(self.start_requested.emit)
        self.pause_button.toggled.connect(self._pause)
        self.minus_button.clicked.connect(lambda: self.nudge_requested.emit(-1))
        self.plus_button.clicked.connect(lambda: self.nudge_requested.emit(+1))
        self.stop_button.clicked.connect(lambda: self.stop_requested.emit("patient STOP"))

        buttons = QGridLayout()
        buttons.addWidget(self.start_button, 0, 0)
        buttons.addWidget(self.pause_button, 0, 1)
        buttons.addWidget(self.minus_button, 1, 0)
        buttons.addWidget(self.plus_button, 1, 1)
        buttons.addWidget(self.stop_button, 2, 0, 1, 2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addWidget(self.cue, 3)
        layout.addWidget(self.progress)
        layout.addWidget(self.intensity)
        layout.addLayout(buttons, 2)
        layout.addWidget(self.sound)
        self.set_running(False)

    # -- what the main window tells it ------------------------------------------------------

    def prepare(self, protocol: Protocol) -> None:
        """A session of ``protocol`` is about to start: its window bounds the ± buttons."""
        channel = protocol.channels[0]
        self._window_ma = (channel.amplitude_min_ma, channel.amplitude_max_ma)
        self._last_cue = None
        self.banner.hide()
        self.pause_button.setChecked(False)
        walking = protocol.mode == "gait"
        self.cue.setText("Walk at your own pace" if walking else "Get ready")
        self.progress.setText("")

    def set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        for button in (self.pause_button, self.minus_button, self.plus_button,
                       self.stop_button):
            button.setEnabled(running)
        if not running:
            self.pause_button.setChecked(False)

    def show_status(self, line: StatusLine) -> None:
        self.progress.setText(line.counts_text)
        if line.setting_ma and self._window_ma is not None:
            setting = next(iter(line.setting_ma.values()))
            low, high = self._window_ma
            self.intensity.setText(f"Intensity {setting:g} mA   (your range {low:g}–{high:g})")
            self.minus_button.setEnabled(self.stop_button.isEnabled() and setting > low)
            self.plus_button.setEnabled(self.stop_button.isEnabled() and setting < high)
        if line.latched:
            self.banner.setText("Stimulation stopped. Please call your therapist.")
            self.banner.show()
        else:
            self.banner.hide()

    def show_cue(self, cue: Cue | None) -> None:
        if cue is None or cue == self._last_cue:
            return
        self._last_cue = cue
        self.cue.setText(cue.text)
        if self.sound.isChecked():
            QApplication.beep()
            self.spoken.append(cue.text)
            self._speak(cue.text)

    def show_end(self, text: str) -> None:
        self.cue.setText(text)
        self.set_running(False)

    # -- keys -------------------------------------------------------------------------------

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = Qt.Key(event.key())
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.start_button.isEnabled():
            self.start_requested.emit()
        elif key == Qt.Key.Key_P and self.pause_button.isEnabled():
            self.pause_button.toggle()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal) and self.plus_button.isEnabled():
            self.nudge_requested.emit(+1)
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore) and self.minus_button.isEnabled():
            self.nudge_requested.emit(-1)
        else:
            super().keyPressEvent(event)

    def _pause(self, paused: bool) -> None:
        self.pause_button.setText("Resume  (P)" if paused else "Pause  (P)")
        self.pause_toggled.emit(paused)

    def _say(self, text: str) -> None:
        """Speak without waiting (a cue must never hold the window)."""
        if self._speech is not None:
            subprocess.Popen([*self._speech, text], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)

