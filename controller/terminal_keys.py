"""The terminal as a front end: single keys drive a running session through its runner.

  space   stop the session          p   pause / resume
  + or =  intensity up 1 mA         -   intensity down 1 mA (inside the therapist's window)
  r       reset a latched fault

Keys are read on a thread of their own with the terminal in cbreak mode (no Enter
needed, Ctrl-C still a signal), and the terminal's settings are restored on the way out,
whatever happened. When standard input is not a terminal nothing is read.
"""

from __future__ import annotations

import codecs
import os
import select
import sys
import termios
import threading
import tty
from types import TracebackType
from typing import Any, Self, TextIO

from controller.runner import SessionRunner

READ_BYTES = 256
"""Bytes taken per read: any keys typed or pasted together arrive in one read."""
HELP = "keys: space stop · p pause/resume · +/- intensity · r reset fault"


class TerminalKeys:
    def __init__(self, runner: SessionRunner, stream: TextIO | None = None) -> None:
        self._runner = runner
        self._stream = stream if stream is not None else sys.stdin
        self._saved: list[Any] | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self._thread is not None

    def __enter__(self) -> Self:
        try:
            fd = self._stream.fileno()
            if not self._stream.isatty():
                return self
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        except (OSError, ValueError, termios.error):
            return self
        self._thread = threading.Thread(target=self._read, args=(fd,), name="terminal-keys",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=0.5)
        if self._saved is not None:
            try:  # at once: waiting for output to drain hangs on a terminal stopped by Ctrl-S
                termios.tcsetattr(self._stream.fileno(), termios.TCSANOW, self._saved)
            except (OSError, ValueError, termios.error):
                pass

    def _read(self, fd: int) -> None:
        # Straight from the descriptor: a text stream's read(1) keeps the rest of a read in
        # its own buffer, where select() cannot see it, so a second key that came in the
        # same read waited for the next key press.
        decoder = codecs.getincrementaldecoder(self._stream.encoding or "utf-8")("replace")
        while not self._done.is_set():
            try:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if not ready:
                    continue
                data = os.read(fd, READ_BYTES)
            except (OSError, ValueError):
                return
            if not data:
                return
            for key in decoder.decode(data):
                self.press(key)

    def press(self, key: str) -> None:
        """Act on one key (also how tests drive it)."""
        runner = self._runner
        if key == " ":
            runner.stop("keyboard")
        elif key in ("p", "P"):
            if runner.session.paused:
                runner.resume()
            else:
                runner.pause()
        elif key in ("+", "="):
            runner.nudge_all(+1)
        elif key == "-":
            runner.nudge_all(-1)
        elif key in ("r", "R"):
            runner.reset_faults()
