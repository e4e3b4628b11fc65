"""Exercise mode: the patient's repetitions drive the exercise machine, which says when to
stimulate and what to tell the patient.

Everything exercise-specific about a session is here: the exercise detector (the
segment's angle from rest, and the onset / top / lowering / rest of each repetition), the
machine, the cues, and the per-repetition measures a therapist judges progress by (range
of motion, time to peak, hold achieved, lowering time, steadiness of the hold, the
stimulation it got). The session loop around it is the same as for walking.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from controller.detect.exercise import REST_FRACTION
from controller.exercise_machine import ExerciseMachine, ExercisePhase, RepetitionWindow
from controller.observe import Observers
from controller.types import Cue, ExerciseEvent, ExerciseEventKind, Repetition, Sample

FIGURE_LABELS = {
    "reps_done": "repetitions done",
    "reps_prescribed": "repetitions prescribed",
    "sets_done": "sets done",
    "incomplete_reps": "incomplete repetitions",
    "mean_rom_deg": "mean range of motion (°)",
    "best_rom_deg": "best range of motion (°)",
    "holds_achieved": "holds achieved",
    "stimulated_reps": "stimulated repetitions",
    "assisted_reps": "assisted repetitions",
}
COMPLETE_SHARE = 0.6
"""A movement counts as a repetition once it reaches this share of the target range."""
HOLD_TOLERANCE = 0.1
"""A hold is kept while the angle stays within this fraction of the repetition's peak."""
HOLD_ACHIEVED = 0.9
"""A prescribed hold counts as achieved when this share of it was kept."""
_MOVING = frozenset({ExercisePhase.RISE, ExercisePhase.HOLD, ExercisePhase.LOWER})
_BETWEEN_REPS = frozenset({ExercisePhase.CUE, ExercisePhase.REST, ExercisePhase.SET_BREAK})


class ExerciseDetector(Protocol):
    """What the control needs from the exercise detector (:mod:`controller.detect.exercise`)."""

    @property
    def calibrated(self) -> bool:
        """The rest orientation is known; before that no repetition can be followed."""

    @property
    def angle_deg(self) -> float:
        """The segment's angle from its calibrated rest, in the movement's plane."""

    @property
    def cross_angle_deg(self) -> float:
        """Its tilt from rest about the axis across the movement."""

    def update(self, sample: Sample) -> list[ExerciseEvent]: ...


class ExerciseControl:
    """One prescribed exercise: samples in, cues and repetitions out, an intensity wanted."""

    labels = FIGURE_LABELS

    def __init__(self, detector: ExerciseDetector, machine: ExerciseMachine,
                 observers: Observers, delivered_charge_uc: Callable[[], float], *,
                 target_rom_deg: float, onset_threshold_deg: float, start_cue: str) -> None:
        self.machine = machine
        self._detector = detector
        self._observers = observers
        self._delivered_charge_uc = delivered_charge_uc
        self._target_rom_deg = target_rom_deg
        self._rest_band_deg = onset_threshold_deg
        self._start_cue = start_cue
        self._phase: ExercisePhase | None = None
        self._begun = False
        self._asked_to_keep_still = False
        self._assist_told = False
        self._paused_at_s: float | None = None
        self._armed = True
        self._trace_t_s: list[float] = []
        self._trace_deg: list[float] = []
        self._trace_cross_deg: list[float] = []
        self._onset_s: float | None = None
        self._charge_at_open_uc = 0.0
        self._stimulation_s = 0.0
        self._last_s: float | None = None
        self._windows_closed = 0
        self.repetitions: list[Repetition] = []

    @property
    def phase(self) -> str:
        return self.machine.phase.value if self._begun else "calibrating"

    @property
    def finished(self) -> bool:
        return self.machine.done

    def feed(self, sample: Sample) -> None:
        was_moving = self.machine.phase in _MOVING
        for event in self._detector.update(sample):
            self._observers.event(event)
            if self._begun and self._paused_at_s is None:
                self._follow(event)
        angle_deg = self._detector.angle_deg
        if was_moving or self.machine.phase in _MOVING:
            self._trace_t_s.append(sample.t_s)
            self._trace_deg.append(angle_deg)
            self._trace_cross_deg.append(self._detector.cross_angle_deg)
        if self.machine.phase is ExercisePhase.RISE and angle_deg >= self._target_rom_deg and \
                self._paused_at_s is None:
            self.machine.handle("reached", sample.t_s)
            self._note_phase(sample.t_s)

    def advance(self, now_s: float) -> None:
        if self._paused_at_s is not None:
            return
        if not self._begun:
            self._wait_for_calibration(now_s)
            return
        if self._last_s is not None and self.machine.wants_stimulation:
            self._stimulation_s += now_s - self._last_s
        self._last_s = now_s
        self.machine.advance(now_s)
        self._note_phase(now_s)
        if self.machine.assisting and not self._assist_told:
            self._observers.cue(Cue(now_s, "assist", f"{self._start_cue}: stimulation helps"))
        self._assist_told = self.machine.assisting

    def warnings(self) -> list[str]:
        """Repetitions report their own stimulation; nothing to add."""
        return []

    def optional(self) -> bool:
        """Every stimulated phase of a repetition is prescribed: none is optional."""
        return False

    def intensity(self) -> float:
        """Full setting in the stimulated phases, once armed."""
        if self.machine.phase in _BETWEEN_REPS:
            self._armed = True
        return 1.0 if self.machine.wants_stimulation and self._armed else 0.0

    def rearm(self) -> None:
        """After a reset: no output until the next repetition begins."""
        self._armed = False

    def pause(self, now_s: float) -> None:
        """The prescription waits: no timer runs and no movement counts until resumed."""
        self._paused_at_s = now_s
        self._observers.cue(Cue(now_s, "paused", "Paused"))

    def resume(self, now_s: float) -> None:
        """The phase under way goes on with the time it had left; output waits for the
        next repetition."""
        if self._paused_at_s is not None:
            self.machine.entered_s += now_s - self._paused_at_s
            self._paused_at_s = None
        self._last_s = None
        self.rearm()
        if self._begun:
            cue = self._cue(now_s, self.machine.phase)
            if cue is not None:
                self._observers.cue(cue)

    def close_units(self) -> None:
        windows = self.machine.windows
        for window in windows[self._windows_closed:]:
            repetition = self._measure(window)
            self.repetitions.append(repetition)
            self._observers.unit(repetition)
        self._windows_closed = len(windows)

    def counts(self) -> dict[str, int]:
        rx = self.machine.prescription
        return {"reps": len(self.machine.windows), "of": rx.reps * rx.sets,
                "set": min(self.machine.set_index + 1, rx.sets), "sets": rx.sets}

    def figures(self) -> dict[str, int | float]:
        reps = self.repetitions
        rx = self.machine.prescription
        roms = [rep.peak_angle_deg for rep in reps]
        full_sets = self.machine.set_index + (self.machine.reps_in_set >= rx.reps)
        return {
            "reps_done": len(reps),
            "reps_prescribed": rx.reps * rx.sets,
            "sets_done": min(full_sets, rx.sets),
            "incomplete_reps": self.machine.incomplete_reps,
            "mean_rom_deg": round(float(np.mean(roms)), 1) if roms else 0.0,
            "best_rom_deg": round(max(roms), 1) if roms else 0.0,
            "holds_achieved": sum(rep.hold_s >= HOLD_ACHIEVED * rx.hold_s for rep in reps),
            "stimulated_reps": sum(rep.stimulated for rep in reps),
            "assisted_reps": sum(rep.assisted for rep in reps),
        }

    # -- internals ------------------------------------------------------------------------

    def _wait_for_calibration(self, now_s: float) -> None:
        """No cue before the rest position is known: the patient is asked to keep still."""
        if self._detector.calibrated:
            self._begun = True
            self.machine.begin(now_s)
            self._note_phase(now_s)
        elif self._phase is None and not self._asked_to_keep_still:
            self._asked_to_keep_still = True
            self._observers.cue(Cue(now_s, "calibrate",
                                    "Keep still: measuring your rest position"))

    def _follow(self, event: ExerciseEvent) -> None:
        """One detector event into the machine, remembering where a repetition began."""
        phase = self.machine.phase
        if event.kind is ExerciseEventKind.ONSET and (
                phase in _BETWEEN_REPS or (phase is ExercisePhase.RISE
                                           and self._onset_s is None)):
            self._onset_s = event.t_s
        elif event.kind in (ExerciseEventKind.ABANDONED, ExerciseEventKind.FIDGET) and \
                phase in (ExercisePhase.CUE, ExercisePhase.RISE):
            self._onset_s = None
        self.machine.handle(event.trigger, event.detected_at_s)
        self._note_phase(event.detected_at_s)

    def _note_phase(self, t_s: float) -> None:
        phase = self.machine.phase
        if phase is self._phase:
            return
        self._phase = phase
        self._observers.phase(t_s, phase.value)
        if phase is ExercisePhase.RISE:
            self._charge_at_open_uc = self._delivered_charge_uc()
            self._stimulation_s = 0.0
        cue = self._cue(t_s, phase)
        if cue is not None:
            self._observers.cue(cue)

    def _cue(self, t_s: float, phase: ExercisePhase) -> Cue | None:
        """What the patient is told on entering ``phase``; nothing when the patient has
        just started the rise on their own."""
        rx, machine = self.machine.prescription, self.machine
        match phase:
            case ExercisePhase.CUE:
                number = machine.reps_in_set + 1
                return Cue(t_s, "start", f"{self._start_cue} ({number} of {rx.reps}, set "
                           f"{machine.set_index + 1} of {rx.sets})")
            case ExercisePhase.RISE:
                if rx.pairing != "cued":
                    return None
                return Cue(t_s, "rise", f"{self._start_cue} now", rx.rise_s)
            case ExercisePhase.HOLD:
                return Cue(t_s, "hold", f"Hold {rx.hold_s:g} s", rx.hold_s)
            case ExercisePhase.LOWER:
                text = "Lower slowly" if rx.lower_s >= 2.0 else "Lower"
                return Cue(t_s, "lower", text, rx.lower_s)
            case ExercisePhase.REST:
                return Cue(t_s, "rest", f"Rest {rx.rest_between_reps_s:g} s",
                           rx.rest_between_reps_s)
            case ExercisePhase.SET_BREAK:
                return Cue(t_s, "set_break", f"Set {machine.set_index + 1} of {rx.sets} done: "
                           f"rest {rx.rest_between_sets_s:g} s", rx.rest_between_sets_s)
        return Cue(t_s, "done", f"Done: {len(machine.windows)} repetitions")

    def _measure(self, window: RepetitionWindow) -> Repetition:
        """The repetition's figures from the angle it traced while the machine was in it."""
        onset_s = self._onset_s if self._onset_s is not None else window.start_s
        self._onset_s = None
        t_s = np.asarray(self._trace_t_s)
        angle_deg = np.asarray(self._trace_deg)
        cross_deg = np.asarray(self._trace_cross_deg)
        self._trace_t_s, self._trace_deg, self._trace_cross_deg = [], [], []
        charge_uc = self._delivered_charge_uc() - self._charge_at_open_uc
        if not len(t_s):
            return Repetition(window.set_index, window.rep_index, onset_s, onset_s, 0.0, 0.0,
                              None, window.end_s, charge_uc > 0.0, charge_uc,
                              self._stimulation_s, window.assisted, 0.0)
        top = int(np.argmax(angle_deg))
        peak_deg = float(angle_deg[top])
        held = angle_deg >= peak_deg * (1.0 - HOLD_TOLERANCE)
        dt_s = np.diff(t_s, append=t_s[-1])
        hold_s = float(np.sum(dt_s[held]))
        hold_end = top + int(np.argmin(held[top:])) if not held[top:].all() else len(t_s) - 1
        rest_band_deg = max(self._rest_band_deg, REST_FRACTION * peak_deg)
        back = np.nonzero(angle_deg[hold_end:] <= rest_band_deg)[0]
        lower_s = float(t_s[hold_end + back[0]] - t_s[hold_end]) if len(back) else None
        in_hold = (t_s >= (window.hold_start_s or t_s[top])) & (
            t_s < (window.lower_start_s or t_s[-1]))
        sway_deg = float(np.sqrt(np.var(angle_deg[in_hold]) + np.var(cross_deg[in_hold]))) \
            if in_hold.any() else 0.0
        reached_s = float(t_s[int(np.argmax(held))])
        return Repetition(window.set_index, window.rep_index, onset_s, reached_s,
                          peak_deg, hold_s, lower_s, window.end_s, charge_uc > 0.0, charge_uc,
                          self._stimulation_s, window.assisted, sway_deg,
                          float(np.ptp(angle_deg)), float(np.ptp(cross_deg)))
