"""One supervised gait session: sensor -> detector -> machine -> supervisor -> stimulator.

The session owns the clock and the record. It hands the stimulator to the supervisor at
construction and keeps no reference to it, so nothing here can command output except
through the supervisor. Every exit path, a crash included, ends with the supervisor's
shutdown (output zero, stimulator stopped and closed) and the record committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import Enum

from controller.clock import Clock
from controller.detect.base import GaitDetector
from controller.devices.base import MotionSensor, SensorError, Stimulator
from controller.machine import GaitMachine, GaitPhase
from controller.record import SessionRecord
from controller.safety import Fault, FaultKind, SafetySupervisor
from controller.types import Sample
from protocols.schema import Protocol

_STANCE = GaitPhase.STANCE.value


class SessionStatus(str, Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    """Ended by the patient or operator."""
    EMERGENCY_STOP = "emergency_stop"
    FAILED = "failed"
    """Ended by an unexpected error; output was still forced off."""


@dataclass
class SessionSummary:
    session_id: int
    record_path: str
    status: str
    duration_s: float
    samples: int
    steps: int
    stimulated_steps: int
    missed_heel_strikes: int
    unexpected_events: int
    faults: list[dict[str, object]] = field(default_factory=list)
    charge_uc: dict[int, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class SessionStatusLine:
    """What a live display shows each refresh."""

    t_s: float
    phase: GaitPhase
    output_ma: dict[int, float]
    steps: int
    latched: tuple[Fault, ...]
    paused: bool


class GaitSession:
    def __init__(self, protocol: Protocol, sensor: MotionSensor, stimulator: Stimulator,
                 clock: Clock, record: SessionRecord, detector: GaitDetector,
                 duration_s: float | None = None) -> None:
        self.protocol = protocol
        self.record = record
        self.supervisor = SafetySupervisor(stimulator, protocol.safety_config(), record)
        start_on = getattr(protocol.trigger, "start_on", "toe_off")
        stimulation = protocol.stimulation
        self.machine = GaitMachine(
            start_on, protocol.extension_s,
            step_limit_s=stimulation.max_burst_s - stimulation.ramp_down_s)
        self._sensor = sensor
        self._detector = detector
        self._clock = clock
        self._duration_s = duration_s if duration_s is not None else protocol.session.duration_s
        self._start_s: float | None = None
        self._now_s = clock.now()
        self._samples = 0
        self._phase = self.machine.state
        """The phase last written to the record (the machine's state name)."""
        self._armed = True
        """False after a reset or resume until the leg is back in stance."""
        self._paused = False
        self._pending_stop: tuple[SessionStatus, str] | None = None
        self._pending_estop: str | None = None
        self._lock = threading.Lock()
        self._steps_recorded = 0
        self._charge_at_step_start = 0.0
        self._stimulated_steps = 0
        self._requested_on = False
        self.status = SessionStatus.RUNNING

    # -- commands from outside the loop (any thread) -----------------------------------

    def request_emergency_stop(self, source: str, end_session: bool = False) -> None:
        """Latch an emergency stop at the next tick (at most one tick away).

        The session keeps recording unless ``end_session``; output stays at zero until
        an explicit reset.
        """
        with self._lock:
            self._pending_estop = source
            if end_session:
                self._pending_stop = (SessionStatus.EMERGENCY_STOP, source)

    def request_stop(self, source: str = "patient") -> None:
        with self._lock:
            if self._pending_stop is None:
                self._pending_stop = (SessionStatus.STOPPED, source)

    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._armed = False

    # -- commands from the loop's thread -------------------------------------------------

    def nudge(self, channel: int, steps: int) -> float:
        return self.supervisor.nudge(self._now_s, channel, steps)

    def reset_faults(self) -> list[str]:
        """Clear latched faults if their causes are gone; output waits for the next step."""
        remaining = self.supervisor.reset(self._now_s)
        self.supervisor.loop_resumed(self._clock.now())
        if not remaining:
            self._armed = False
        return remaining

    # -- the loop ------------------------------------------------------------------------

    def start(self) -> None:
        self.supervisor.start(self._clock.now())
        self._start_s = self._now_s = self._clock.now()
        self.supervisor.loop_resumed(self._now_s)

    def step(self) -> bool:
        """Run one control tick; False once the session has ended."""
        if self.status is not SessionStatus.RUNNING:
            return False
        now = self._now_s = self._clock.next_tick()
        self._take_pending_stop(now)
        if self.status is SessionStatus.RUNNING:
            try:
                for sample in self._sensor.read():
                    self._process(sample, now)
            except EOFError:
                self.status = SessionStatus.COMPLETED
            except SensorError as exc:
                self.supervisor.fault(FaultKind.SENSOR_ERROR, now, str(exc))
        self.machine.advance(now)
        self._note_phase(now)
        self._request_output(now)
        self._record_steps()
        self.supervisor.tick(now)
        self.record.tick()
        assert self._start_s is not None
        if self.status is SessionStatus.RUNNING and now - self._start_s >= self._duration_s:
            self.status = SessionStatus.COMPLETED
        return self.status is SessionStatus.RUNNING

    def run(self, on_tick: Callable[[SessionStatusLine], None] | None = None) -> SessionSummary:
        """Start, loop until the end, and always shut down safely."""
        try:
            self.start()
            while self.step():
                if on_tick is not None:
                    on_tick(self.status_line())
        except BaseException:
            self.status = SessionStatus.FAILED
            raise
        finally:
            summary = self.finish()
        return summary

    def finish(self) -> SessionSummary:
        """Output off and stimulator closed first, then the record completed and closed."""
        if self.status is SessionStatus.RUNNING:
            self.status = SessionStatus.STOPPED
        self.supervisor.shutdown(self._now_s)
        self._record_steps()
        summary = self.summary()
        self.record.finish(self.status.value, summary.as_dict())
        return summary

    def status_line(self) -> SessionStatusLine:
        return SessionStatusLine(
            self._now_s, self.machine.phase,
            {ch: self.supervisor.output_ma(ch) for ch in self.supervisor.channels},
            len(self.machine.steps), self.supervisor.faults, self._paused)

    def summary(self) -> SessionSummary:
        steps = self.machine.steps
        return SessionSummary(
            session_id=self.record.session_id,
            record_path=str(self.record.path),
            status=self.status.value,
            duration_s=round(self._now_s - (self._start_s if self._start_s is not None else self._now_s), 3),
            samples=self._samples,
            steps=len(steps),
            stimulated_steps=self._stimulated_steps,
            missed_heel_strikes=sum(s.outcome.value == "missed_heel_strike" for s in steps),
            unexpected_events=self.machine.unexpected_events,
            faults=[{"kind": f.kind.value, "t_s": round(f.t_s, 3), "detail": f.detail}
                    for f in self.supervisor.fault_history],
            charge_uc={ch: round(c, 1) for ch, c in self.supervisor.delivered_charge_uc.items()},
        )

    # -- internals -------------------------------------------------------------------

    def _take_pending_stop(self, now: float) -> None:
        if self._pending_estop is None and self._pending_stop is None:
            return  # the usual tick: no lock needed to see that nothing is pending
        with self._lock:
            estop, self._pending_estop = self._pending_estop, None
            stop, self._pending_stop = self._pending_stop, None
        if estop is not None:
            self.supervisor.emergency_stop(now, estop)
        if stop is not None:
            status, source = stop
            self.record.notice(now, "stop", f"session ended by {source}")
            self.status = status

    def _process(self, sample: Sample, now: float) -> None:
        self._samples += 1
        self.supervisor.observe(sample, now)
        self.record.sample(sample)
        for event in self._detector.update(sample):
            self.record.event(event)
            self.machine.handle(event)
            self._note_phase(event.detected_at_s)

    def _note_phase(self, t_s: float) -> None:
        phase = self.machine.state
        if phase == self._phase:
            return
        if self._phase == _STANCE:
            self._charge_at_step_start = self._total_charge()
        self._phase = phase
        self.record.phase(t_s, phase)

    def _request_output(self, now: float) -> None:
        if self.machine.state == _STANCE:
            self._armed = True
        on = self.machine.wants_stimulation and self._armed and not self._paused
        if on is not self._requested_on or self.supervisor.latched:
            for channel in self.supervisor.channels:
                self.supervisor.request(now, channel, 1.0 if on else 0.0)
            self._requested_on = on

    def _record_steps(self) -> None:
        """Record closed steps with the charge delivered while each was open (a ramp-down
        after the step closed is in the channel totals, not in the step)."""
        for step in self.machine.steps[self._steps_recorded:]:
            charge = self._total_charge() - self._charge_at_step_start
            if charge > 0.0:
                self._stimulated_steps += 1
            self.record.step(step.index, step.start_s, step.end_s, step.heel_strike_s,
                             step.outcome.value, charge)
        self._steps_recorded = len(self.machine.steps)

    def _total_charge(self) -> float:
        return sum(self.supervisor.delivered_charge_uc.values())
