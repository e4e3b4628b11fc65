"""SessionRunner: the one way any front end runs a session.

It owns the control loop's thread, so the command line, the GUI, tests and scripts all
drive a session the same way: start it, send commands from any thread (stop, emergency
stop, pause, resume, nudge, reset; each applied at the start of the next tick), get a
throttled status callback, and wait for the summary.

It also watches the loop from outside. Output may stay on only while the loop is alive:
if a tick does not come within ``watchdog_s`` of wall time (a detector call that never
returns, a stalled disk, a debugger), the watchdog stops the stimulator itself through
the supervisor's :meth:`~controller.safety.SafetySupervisor.halt`, and the loop, if it
ever comes back, latches the fault. An emergency stop takes the same path at once, so it
works while the loop is stuck.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
from collections.abc import Callable

from controller.safety import PROCESS_STALL_S
from controller.safety_limits import HARD_LIMITS, LimitViolation
from controller.session import Session
from controller.types import FaultKind, SessionStatus, SessionSummary, StatusLine

StatusCallback = Callable[[StatusLine], None]

LOOP_NICE = -10
"""Niceness asked for the session's threads where the platform permits it (root or
CAP_SYS_NICE): other busy processes then delay a tick less. Never required."""
WAKE_CREDIT_S = 0.02
"""The most one wake-up of the watchdog counts towards a loop's silence: a longer sleep
means the watchdog itself was not running (the process was starved or stopped), so it
cannot tell a stuck loop from a starved one by that time."""

MAX_STATUS_INTERVAL_S = 10.0
"""A status line at least this often: a display that is never updated looks like a hang."""


class SessionRunner:
    def __init__(self, session: Session, *, on_status: StatusCallback | None = None,
                 status_interval_s: float = 0.1, watchdog_s: float | None = None,
                 raise_priority: bool = True) -> None:
        """``watchdog_s``: wall time a tick may take before output is stopped from outside
        the loop; None for a session on simulated time that is not paced to the wall clock
        (there, lateness is judged on the session clock by the supervisor alone).

        Both are refused unless finite and in range: an infinite or NaN watchdog would
        never fire, and nothing else stops output while the loop is stuck.
        ``raise_priority``: ask for :data:`LOOP_NICE` on the loop's and watchdog's threads
        (ignored where not permitted)."""
        if watchdog_s is not None and not 0.0 < watchdog_s <= HARD_LIMITS.loop_late_max_s:
            raise LimitViolation(f"loop watchdog {watchdog_s!r} s outside "
                                 f"0-{HARD_LIMITS.loop_late_max_s:g} s")
        if not 0.0 < status_interval_s <= MAX_STATUS_INTERVAL_S:
            raise ValueError(f"status interval {status_interval_s!r} s outside "
                             f"0-{MAX_STATUS_INTERVAL_S:g} s")
        self.session = session
        self._on_status = on_status
        self._status_interval_s = status_interval_s
        self._watchdog_s = watchdog_s
        self._raise_priority = raise_priority
        self._beat_s: float | None = None
        """Wall time of the loop's last sign of life; None while it may block by design
        (the session's first bring-up of the stimulator; a reset's runs off the loop)."""
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._summary: SessionSummary | None = None
        self._error: BaseException | None = None

    # -- commands, from any thread ----------------------------------------------------------

    def stop(self, source: str = "operator") -> None:
        """End the session at the next tick; output ramps off with the supervisor's shutdown."""
        self.session.submit(lambda now_s: self.session.stop(now_s, source))

    def emergency_stop(self, source: str, end_session: bool = True) -> None:
        """Output off now (even if the loop is stuck), latched until a reset."""
        self.session.supervisor.halt(FaultKind.EMERGENCY_STOP, source)
        self.session.submit(
            lambda now_s: self.session.emergency_stop(now_s, source, end_session))

    def pause(self) -> None:
        self.session.submit(self.session.pause)

    def resume(self) -> None:
        self.session.submit(self.session.resume)

    def nudge(self, channel: int, steps: int) -> None:
        """The patient's ±: whole 1 mA steps, kept inside the therapist's window."""
        def nudge(now_s: float) -> None:
            self.session.nudge(now_s, channel, steps)
        self.session.submit(nudge)

    def nudge_all(self, steps: int) -> None:
        for channel in self.session.supervisor.channels:
            self.nudge(channel, steps)

    def reset_faults(self) -> None:
        """Clear latched faults whose causes are gone (refusals go to the record). On a
        watched loop the stimulator's bring-up runs off the loop, which keeps ticking with
        output latched off until a later tick completes the reset."""
        self.session.submit(self.session.reset_faults)

    # -- running ----------------------------------------------------------------------------

    def start(self) -> None:
        """Run the loop on its own thread; returns at once."""
        if self._thread is not None:
            raise RuntimeError("a runner runs its session once")
        self._thread = threading.Thread(target=self._loop, name="control-loop", daemon=True)
        self._thread.start()
        if self._watchdog_s is not None:
            self.session.supervisor.watched_from_outside()
            self.session.supervisor.bring_up_off_loop()
            threading.Thread(target=self._watch, name="loop-watchdog", daemon=True).start()

    def wait(self, timeout_s: float | None = None) -> SessionSummary | None:
        """The summary once the session has ended (None if ``timeout_s`` ran out first).

        An error that ended the loop is raised here, after output was turned off.
        """
        if not self._done.wait(timeout_s):
            return None
        if self._error is not None:
            raise self._error
        return self._summary

    def run(self) -> SessionSummary:
        """Start and wait for the end; the loop still runs on its own thread, so a signal
        handler on the calling thread can always reach :meth:`emergency_stop`."""
        self.start()
        while (summary := self.wait(0.1)) is None:
            pass
        return summary

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    # -- the loop's thread ------------------------------------------------------------------

    def _loop(self) -> None:
        session = self.session
        try:
            self._prioritise()
            gc.collect()
            gc.freeze()  # what setup built is never collected again: shorter pauses in ticks
            session.start()
            self._beat_s = last_status_s = time.monotonic()
            latched = session.supervisor.latched
            while session.step():
                self._beat_s = now = time.monotonic()
                if self._on_status is not None and (
                        now - last_status_s >= self._status_interval_s
                        or session.supervisor.latched is not latched):
                    last_status_s, latched = now, session.supervisor.latched
                    self._on_status(session.status_line())
        except BaseException as exc:  # noqa: BLE001 - handed to wait(), after output off
            session.status = SessionStatus.FAILED
            self._error = exc
        finally:
            self._beat_s = None
            gc.unfreeze()  # a process that runs session after session keeps no garbage
            try:
                self._summary = session.finish()
                if self._on_status is not None:
                    self._on_status(session.status_line())
            except BaseException as exc:  # noqa: BLE001 - handed to wait()
                self._error = self._error or exc
            self._done.set()

    def _prioritise(self) -> None:
        """Every thread of the process, not the loop's alone: the loop waits for the
        interpreter lock and the drivers' locks, and a thread of lower priority holding
        one of them while the OS runs something else would hold the loop up with it."""
        if not (self._raise_priority and hasattr(os, "setpriority")):
            return
        try:
            threads = [int(tid) for tid in os.listdir("/proc/self/task")]
        except OSError:  # no /proc: this thread alone
            threads = [threading.get_native_id()]
        for tid in threads:
            with contextlib.suppress(OSError):  # not permitted, or gone: run as we are
                os.setpriority(os.PRIO_PROCESS, tid, LOOP_NICE)

    def _watch(self) -> None:
        """Stop output when the loop has been silent for ``watchdog_s`` while this thread
        kept running; and when this thread itself stood still past PROCESS_STALL_S (the
        whole process was stopped), since the loop then did too.

        Silence is counted wake-up by wake-up, each at most :data:`WAKE_CREDIT_S`: a loop
        that is stuck while the process runs is stopped within the limit, but a process the
        OS left waiting for a moment is not mistaken for a stuck loop."""
        assert self._watchdog_s is not None
        limit_s = self._watchdog_s
        self._prioritise()
        fired_for: float | None = None
        seen_beat_s: float | None = None
        silent_s = 0.0
        woke_s = time.monotonic()
        while not self._done.wait(min(0.005, limit_s / 10)):
            now = time.monotonic()
            slept_s, woke_s = now - woke_s, now
            beat_s = self._beat_s
            if beat_s is None:
                seen_beat_s = None
                continue
            if beat_s != seen_beat_s:
                seen_beat_s, silent_s = beat_s, min(now - beat_s, WAKE_CREDIT_S)
            else:
                silent_s += min(slept_s, WAKE_CREDIT_S)
            if beat_s == fired_for:
                continue
            if slept_s > PROCESS_STALL_S:
                why = (f"the process stood still for {1000 * slept_s:.0f} ms: output stopped "
                       "by the loop watchdog")
            elif silent_s > limit_s:
                why = (f"control loop silent for {1000 * (now - beat_s):.0f} ms: output "
                       "stopped by the loop watchdog")
            else:
                continue
            fired_for = beat_s
            self.session.supervisor.halt(FaultKind.LOOP_LATE, why)
