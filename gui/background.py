"""Work that would freeze the window (reading a half-hour session, writing a report or an
export) runs on Qt's thread pool; its result, its progress or its error comes back on the
GUI thread.

An error the record or the disk can cause is handed back as its message; anything else is
logged with its traceback and handed back as one line, so the screen always says what
happened and never hangs waiting.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from controller.record import RecordOpenError

Progress = Callable[[int, int], None]
"""``(done, total)`` as the work goes."""
Work = Callable[[Progress], Any]
EXPECTED: tuple[type[Exception], ...] = (RecordOpenError, sqlite3.Error, OSError, LookupError,
                                         ValueError)
log = logging.getLogger(__name__)


class _Relay(QObject):
    """Lives on the GUI thread, so what the worker emits is delivered there; a child of
    the widget that asked, so nothing is delivered to a widget that has gone."""

    done = Signal(object)
    failed = Signal(str)
    progressed = Signal(int, int)

    def __init__(self, parent: QObject, on_done: Callable[[Any], None],
                 on_failed: Callable[[str], None], on_progress: Progress | None) -> None:
        super().__init__(parent)
        self._on_done, self._on_failed, self._on_progress = on_done, on_failed, on_progress
        self.done.connect(self._deliver_done)
        self.failed.connect(self._deliver_failed)
        self.progressed.connect(self._deliver_progress)

    @Slot(object)
    def _deliver_done(self, result: Any) -> None:
        self.deleteLater()
        self._on_done(result)

    @Slot(str)
    def _deliver_failed(self, message: str) -> None:
        self.deleteLater()
        self._on_failed(message)

    @Slot(int, int)
    def _deliver_progress(self, done: int, total: int) -> None:
        if self._on_progress is not None:
            self._on_progress(done, total)


class _Job(QRunnable):
    def __init__(self, work: Work, relay: _Relay) -> None:
        super().__init__()
        self._work, self._relay = work, relay

    def run(self) -> None:
        try:
            try:
                result = self._work(self._relay.progressed.emit)
            except EXPECTED as exc:
                self._relay.failed.emit(str(exc))
            except Exception as exc:
                log.exception("background work failed")
                self._relay.failed.emit(f"Unexpected error: {type(exc).__name__}: {exc}")
            else:
                self._relay.done.emit(result)
        except RuntimeError:
            pass  # the widget that asked has been closed: nobody is waiting for the answer


def run_in_background(owner: QObject, work: Work, on_done: Callable[[Any], None],
                      on_failed: Callable[[str], None],
                      on_progress: Progress | None = None) -> None:
    """Start ``work(progress)`` off the GUI thread; exactly one of ``on_done(result)`` or
    ``on_failed(message)`` is called on the GUI thread, unless ``owner`` is gone by then."""
    QThreadPool.globalInstance().start(
        _Job(work, _Relay(owner, on_done, on_failed, on_progress)))
