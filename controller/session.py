"""The control loop, the same for every mode: one :meth:`Session.step` is one tick.

A tick: take the commands queued since the last tick (stop, pause, nudge, reset...), read
the sensor's new samples, let the sensor watch judge them, hand them to the mode's control
(gait or exercise), ask the control what intensity it wants, let the supervisor decide
what is sent, and tell every observer. The mode's logic lives in its control; nothing
here asks which mode is running.

The session never holds the stimulator: the supervisor got it at construction. Every
exit path ends in :meth:`Session.finish`, which turns output off and closes the
stimulator before the observers (the record among them) hear the end.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from controller.clock import Clock
from controller.devices.base import MotionSensor, SensorError
from controller.observe import Observers
from controller.safety import SafetySupervisor
from controller.sensor_watch import SensorWatch
from controller.types import FaultKind, Sample, SessionStatus, SessionSummary, StatusLine

if TYPE_CHECKING:
    from controller.record import SessionRecord

Command = Callable[[float], object]
"""Something to do at the start of the next tick, given that tick's time."""


class ModeControl(Protocol):
    """What the loop needs from a mode (see :mod:`controller.gait_control`)."""

    labels: dict[str, str]

    @property
    def phase(self) -> str: ...

    def feed(self, sample: Sample) -> None:
        """Detect on one sample and drive the mode's machine."""

    def advance(self, now_s: float) -> None:
        """Let time act on the machine (timers, timeouts)."""

    def intensity(self) -> float:
        """The fraction (0..1) of each channel's setting the mode wants now."""

    def optional(self) -> bool:
        """Whether the output wanted now may be dropped first near the duty-cycle limit."""

    def rearm(self) -> None:
        """After a reset: no output until the mode's cycle is back at its start."""

    def pause(self, now_s: float) -> None:
        """The patient paused: output is already held at zero by the session."""

    def resume(self, now_s: float) -> None:
        """Back from a pause: rearm, and whatever else the mode needs."""

    def close_units(self) -> None:
        """Report units (steps, repetitions) that closed, with the charge they received."""

    @property
    def finished(self) -> bool:
        """The mode's own end (all sets done); a walk ends only by time or by its user."""

    def counts(self) -> dict[str, int]: ...

    def figures(self) -> dict[str, int | float]: ...

    def warnings(self) -> list[str]:
        """What the figures say went wrong, in words (for the summary)."""


class Session:
    """One supervised session; driven tick by tick by :class:`controller.runner.SessionRunner`.

    The public methods other than :meth:`submit` belong to the loop's thread; another
    thread asks for them through :meth:`submit` (the runner does this for you).
    """

    def __init__(self, control: ModeControl, sensor: MotionSensor | None,
                 supervisor: SafetySupervisor, watch: SensorWatch | None, clock: Clock,
                 observers: Observers, duration_s: float,
                 record: SessionRecord | None = None) -> None:
        self.control = control
        self.supervisor = supervisor
        self.observers = observers
        self.record = record
        self._sensor = sensor
        self._watch = watch
        self._clock = clock
        self._duration_s = duration_s
        self._start_s: float | None = None
        self._now_s = clock.now()
        self._samples = 0
        self._paused = False
        self._requested = (0.0, False)
        self._commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self.status = SessionStatus.RUNNING
        if record is not None:
            observers.add(record)

    # -- from any thread ------------------------------------------------------------------

    def submit(self, command: Command) -> None:
        """Queue ``command`` for the start of the next tick (thread-safe)."""
        self._commands.put(command)

    # -- loop thread: commands --------------------------------------------------------------

    def stop(self, now_s: float, source: str,
             status: SessionStatus = SessionStatus.STOPPED) -> None:
        self.observers.notice(now_s, "stop", f"session ended by {source}")
        self.status = status

    def emergency_stop(self, now_s: float, source: str, end_session: bool = False) -> None:
        """Latch an emergency stop; the session goes on recording unless ``end_session``."""
        self.supervisor.emergency_stop(now_s, source)
        if end_session:
            self.stop(now_s, source, SessionStatus.EMERGENCY_STOP)

    def pause(self, now_s: float) -> None:
        self._paused = True
        self.control.pause(now_s)
        self.observers.notice(now_s, "pause", "output paused")

    def resume(self, now_s: float) -> None:
        self._paused = False
        self.control.resume(now_s)
        self.observers.notice(now_s, "resume", "output resumes at the next cycle")

    def nudge(self, now_s: float, channel: object, steps: object) -> float | None:
        """The patient's ±; None if the supervisor refused it (its notice says why). Any
        object: a bad one is refused there, not raised here."""
        setting_ma = self.supervisor.nudge(now_s, channel, steps)
        if setting_ma is not None:
            self.observers.notice(now_s, "nudge", f"channel {channel}: {setting_ma:g} mA")
        return setting_ma

    def reset_faults(self, now_s: float) -> list[str]:
        """Clear latched faults if their causes are gone; output waits for the next cycle.

        The control is rearmed when the latch is cleared, which on a loop paced to the
        wall clock is a later tick (the supervisor brings the stimulator up off the loop)."""
        remaining = self.supervisor.reset(now_s, on_cleared=self.control.rearm)
        self.supervisor.loop_resumed(self._clock.now())
        return remaining

    # -- the loop ---------------------------------------------------------------------------

    def start(self) -> None:
        """Bring the stimulator up; the loop's lateness is counted from when that is done."""
        self.supervisor.start(self._clock.now())
        self._start_s = self._now_s = self._clock.now()
        self.supervisor.loop_resumed(self._now_s)
        if self._watch is not None:
            self._watch.start(self._now_s)

    def step(self) -> bool:
        """Run one control tick; False once the session has ended."""
        running = SessionStatus.RUNNING
        if self.status is not running:
            return False
        now = self._now_s = self._clock.next_tick()
        commands = self._commands
        while not commands.empty():
            commands.get_nowait()(now)
        supervisor, control, watch = self.supervisor, self.control, self._watch
        if self.status is running and self._sensor is not None:
            try:
                for sample in self._sensor.read():
                    self._take(sample, now)
            except EOFError:
                self.status = SessionStatus.COMPLETED
            except SensorError as exc:
                supervisor.fault(FaultKind.SENSOR_ERROR, now, str(exc))
        control.advance(now)
        wanted = (0.0 if self._paused else control.intensity(), control.optional())
        if wanted != self._requested or supervisor.latched:
            for channel in supervisor.channels:
                supervisor.request(now, channel, *wanted)
            self._requested = wanted
        control.close_units()
        if watch is not None:
            watch.tick(now)
        supervisor.tick(now)
        self.observers.tick(now)
        if self.record is not None:
            self._check_record(now)
        start_s = self._start_s
        assert start_s is not None, "start() before step()"
        if self.status is running and (control.finished or now - start_s >= self._duration_s):
            self.status = SessionStatus.COMPLETED
        return self.status is running

    def finish(self) -> SessionSummary:
        """Output off and stimulator closed first, then the observers hear the end."""
        if self.status is SessionStatus.RUNNING:
            self.status = SessionStatus.STOPPED
        if self.status is SessionStatus.COMPLETED and self.supervisor.latched:
            self.status = SessionStatus.FAULTED
        self.supervisor.shutdown(self._now_s)
        self.control.close_units()
        summary = self.summary()
        self.observers.finish(summary)
        return summary

    # -- what a display or a report reads ---------------------------------------------------

    @property
    def now_s(self) -> float:
        return self._now_s

    @property
    def paused(self) -> bool:
        return self._paused

    def status_line(self) -> StatusLine:
        supervisor = self.supervisor
        start_s = self._start_s if self._start_s is not None else self._now_s
        return StatusLine(
            t_s=self._now_s, elapsed_s=self._now_s - start_s, phase=self.control.phase,
            output_ma={ch: supervisor.output_ma(ch) for ch in supervisor.channels},
            setting_ma={ch: supervisor.setting_ma(ch) for ch in supervisor.channels},
            counts=self.control.counts(), latched=supervisor.faults, paused=self._paused,
            resetting=supervisor.resetting)

    def summary(self) -> SessionSummary:
        start_s = self._start_s if self._start_s is not None else self._now_s
        return SessionSummary(
            session_id=self.record.session_id if self.record is not None else None,
            record_path=str(self.record.path) if self.record is not None else None,
            status=self.status.value,
            duration_s=round(self._now_s - start_s, 3),
            samples=self._samples,
            figures=self.control.figures(),
            faults=[{"kind": f.kind.value, "t_s": round(f.t_s, 3), "detail": f.detail}
                    for f in self.supervisor.fault_history],
            charge_uc={ch: round(c, 1) for ch, c in self.supervisor.delivered_charge_uc.items()},
            labels=dict(self.control.labels),
            warnings=[*self.supervisor.warnings, *self.control.warnings(),
                      *(self._watch.warnings() if self._watch is not None else [])],
        )

    def _check_record(self, now_s: float) -> None:
        """No stimulation goes unrecorded: a record that cannot be written ends the session
        with output off."""
        problem = self.record.problem() if self.record is not None else None
        if problem is not None and self.status is SessionStatus.RUNNING:
            self.supervisor.fault(FaultKind.RECORD_FAILED, now_s, problem)
            self.stop(now_s, "the record", SessionStatus.FAILED)

    def _take(self, sample: Sample, now_s: float) -> None:
        self._samples += 1
        usable = self._watch is None or self._watch.observe(sample, now_s)
        self.observers.sample(sample)  # recorded even if rejected: the evidence stays
        if usable:
            self.control.feed(sample)
