"""Gait mode: detector events drive the gait machine, which says when to stimulate.

This is everything gait-specific about a session: the detector, the phase machine,
arming (no output after a reset or a resume until the leg is back in stance, so a burst
never starts mid-swing), and the step and charge accounting behind the gait summary.
The session loop around it is the same for every mode.
"""

from __future__ import annotations

from collections.abc import Callable

from controller.detect.base import GaitDetector
from controller.machine import GaitMachine, GaitPhase, StepOutcome
from controller.observe import Observers
from controller.types import ClosedStep, Sample

FIGURE_LABELS = {
    "steps": "steps",
    "stimulated_steps": "stimulated steps",
    "missed_heel_strikes": "missed heel strikes",
    "unexpected_events": "unexpected (false) events",
}


MIN_STEPS_JUDGED = 6
STIMULATED_SHARE = 0.5


class GaitControl:
    """One stimulated leg: samples in, phases and units out, an intensity wanted."""

    labels = FIGURE_LABELS

    def __init__(self, detector: GaitDetector, machine: GaitMachine, observers: Observers,
                 delivered_charge_uc: Callable[[], float]) -> None:
        self.machine = machine
        self._detector = detector
        self._observers = observers
        self._delivered_charge_uc = delivered_charge_uc
        self._phase = machine.phase
        """The phase last reported to the observers."""
        self._armed = True
        self._steps_closed = 0
        self._charge_at_step_start_uc = 0.0
        self._stimulated_steps = 0

    @property
    def phase(self) -> str:
        return self._phase.value

    def feed(self, sample: Sample) -> None:
        for event in self._detector.update(sample):
            self._observers.event(event)
            self.machine.handle(event)
            self._note_phase(event.detected_at_s)
        for note in self._detector.drain_notes():
            self._observers.notice(sample.t_s, "calibration", note)

    def advance(self, now_s: float) -> None:
        """Let time act on the machine (extension ends, a too-long step closes)."""
        self.machine.advance(now_s)
        self._note_phase(now_s)

    def optional(self) -> bool:
        """The extension after heel strike is the part a long walk can spare."""
        return self.machine.phase is GaitPhase.EXTENSION

    def intensity(self) -> float:
        """Full setting while the machine wants output and the leg has been armed."""
        if self.machine.phase is GaitPhase.STANCE:
            self._armed = True
        return 1.0 if self.machine.wants_stimulation and self._armed else 0.0

    def rearm(self) -> None:
        """After a reset or a resume: the walk before the gap is forgotten (the calibration
        is kept), and no output comes before the leg is back in stance."""
        self._detector.reset()
        self._armed = False

    def pause(self, now_s: float) -> None:
        """The patient may go on walking: the detector keeps following the walk."""

    def resume(self, now_s: float) -> None:
        self.rearm()

    def close_units(self) -> None:
        """Report closed steps with the charge delivered while each was open."""
        steps = self.machine.steps
        if len(steps) == self._steps_closed:
            return  # most ticks: nothing closed
        for step in steps[self._steps_closed:]:
            charge_uc = self._delivered_charge_uc() - self._charge_at_step_start_uc
            if charge_uc > 0.0:
                self._stimulated_steps += 1
            self._observers.unit(ClosedStep(step.index, step.start_s, step.end_s,
                                            step.heel_strike_s, step.outcome.value, charge_uc))
        self._steps_closed = len(steps)

    @property
    def finished(self) -> bool:
        return False

    def counts(self) -> dict[str, int]:
        """The live counters a display shows."""
        steps = self.machine.steps
        return {"steps": len(steps), "stimulated": self._stimulated_steps,
                "missed": sum(s.outcome is StepOutcome.MISSED_HEEL_STRIKE for s in steps)}

    def figures(self) -> dict[str, int | float]:
        steps = self.machine.steps
        return {
            "steps": len(steps),
            "stimulated_steps": self._stimulated_steps,
            "missed_heel_strikes": sum(s.outcome is StepOutcome.MISSED_HEEL_STRIKE
                                       for s in steps),
            "unexpected_events": self.machine.unexpected_events,
        }

    def warnings(self) -> list[str]:
        """A walk whose detected steps mostly went unstimulated did not help its walker,
        whatever else went right."""
        steps = len(self.machine.steps)
        if steps >= MIN_STEPS_JUDGED and self._stimulated_steps < STIMULATED_SHARE * steps:
            return [(f"only {self._stimulated_steps} of {steps} detected steps were "
                    "stimulated: check the intensity, the electrodes and the record's notices")]
        return []

    def _note_phase(self, t_s: float) -> None:
        phase = self.machine.phase
        if phase is self._phase:
            return
        if self._phase is GaitPhase.STANCE:
            self._charge_at_step_start_uc = self._delivered_charge_uc()
        self._phase = phase
        self._observers.phase(t_s, phase.value)
