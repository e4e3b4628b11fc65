"""Stop every open stimulator on every way out of the process we can catch.

A normal exit runs ``atexit``; SIGTERM and SIGINT run our handler, which stops first and
then hands the signal to whatever handler was there before (Python's KeyboardInterrupt, an
application's own handler, or the default action, which we re-raise so the process still
dies of the signal). SIGKILL cannot be caught: for that the stimulator's own watchdog
stops the output, which the simulator tests prove.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
import weakref
from types import FrameType
from typing import Protocol

GUARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class EmergencyStoppable(Protocol):
    def emergency_stop(self) -> None:
        """Put the stop command on the wire without waiting for anything; never raise."""


_guarded: weakref.WeakSet[EmergencyStoppable] = weakref.WeakSet()
_installed_signals: set[int] = set()
_lock = threading.Lock()
_atexit_installed = False


def guard(device: EmergencyStoppable) -> None:
    """Stop ``device`` on exit and on SIGTERM/SIGINT until :func:`release` is called.

    Signal handlers can only be installed from the main thread; from another thread the
    ``atexit`` path still applies and the handlers are installed by the next main-thread call.
    """
    global _atexit_installed
    with _lock:
        _guarded.add(device)
        if not _atexit_installed:
            atexit.register(stop_all)
            _atexit_installed = True
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in GUARDED_SIGNALS:
            if signum not in _installed_signals:
                _install(signum)


def release(device: EmergencyStoppable) -> None:
    with _lock:
        _guarded.discard(device)


def stop_all() -> None:
    for device in list(_guarded):
        device.emergency_stop()


def _install(signum: int) -> None:
    previous = signal.getsignal(signum)

    def handler(received: int, frame: FrameType | None) -> None:
        stop_all()
        if callable(previous):
            previous(received, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(received, signal.SIG_DFL)
            os.kill(os.getpid(), received)

    signal.signal(signum, handler)
    _installed_signals.add(signum)
