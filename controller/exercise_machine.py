"""The exercise machine: one repetition after another, as the therapist's sheet prescribes.

    cue -> rise -> hold -> lower -> rest -> (cue | set_break -> cue | done)

The whole prescription is the table below. How a phase ends depends on the pairing:

* **triggered** and **assist-as-needed** follow the patient: the detector's onset starts
  the rise, reaching the top starts the hold, coming back to rest ends the repetition. A
  rise that falls back to rest without a top is not a repetition (the cue stands again):
  an abandoned one counts as incomplete, a fidget not at all.
* **cued** follows the clock (for patients with no active movement): the cue, rise, hold
  and lowering each last their prescribed time, movement or not.
* The hold is timed in every pairing; the rests and set breaks too. A patient who does the
  next repetition (or set) before the rest is over is followed once the movement reaches
  its top (so a fidget in a rest does not end it), also when the cue came while it was
  rising; the rise of such a repetition is not stimulated, the rest being part of the
  prescription.

Stimulation is wanted in the protocol's stimulated phases; under assist-as-needed only once
assistance has started, which it does when the target is not reached within
``assist_timeout_s`` of the cue (no onset) or of the onset (too little movement).
Guards are ``conditions``; bookkeeping runs in ``after`` callbacks, once committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from transitions import Machine


class ExercisePhase(str, Enum):
    CUE = "cue"
    RISE = "rise"
    HOLD = "hold"
    LOWER = "lower"
    REST = "rest"
    SET_BREAK = "set_break"
    DONE = "done"


CUE, RISE, HOLD, LOWER, REST, SET_BREAK, DONE = ExercisePhase
FOLLOW = "_follows_movement"
TIMED = "_timed"
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "onset", "source": CUE, "dest": RISE, "conditions": FOLLOW, "after": "_open"},
    {"trigger": "tick", "source": CUE, "dest": RISE, "conditions": [TIMED, "_cue_over"],
     "after": "_open"},
    {"trigger": "tick", "source": CUE, "dest": RISE, "conditions": "_assist_due",
     "after": ["_open", "_assist"]},
    {"trigger": "tick", "source": RISE, "dest": None, "conditions": "_assist_due",
     "after": "_assist"},
    {"trigger": "reached", "source": RISE, "dest": HOLD, "conditions": FOLLOW},
    {"trigger": "abandoned", "source": RISE, "dest": CUE, "conditions": FOLLOW,
     "unless": "assisting", "after": "_drop"},
    {"trigger": "fidget", "source": RISE, "dest": CUE, "conditions": FOLLOW,
     "unless": "assisting"},
    {"trigger": "tick", "source": RISE, "dest": HOLD, "conditions": [TIMED, "_rise_over"]},
    {"trigger": "tick", "source": RISE, "dest": HOLD, "conditions": "_assisted_rise_over"},
    {"trigger": "tick", "source": HOLD, "dest": LOWER, "conditions": "_hold_over"},
    {"trigger": "lowering", "source": HOLD, "dest": LOWER, "conditions": FOLLOW},
    {"trigger": "at_rest", "source": LOWER, "dest": REST, "conditions": FOLLOW,
     "after": "_close"},
    {"trigger": "tick", "source": LOWER, "dest": REST, "conditions": "_lower_over",
     "after": "_close"},
    {"trigger": "tick", "source": REST, "dest": DONE, "conditions": "_all_sets_done"},
    {"trigger": "tick", "source": REST, "dest": SET_BREAK, "conditions": "_set_done"},
    {"trigger": "tick", "source": REST, "dest": CUE, "conditions": "_rest_over"},
    {"trigger": "tick", "source": SET_BREAK, "dest": CUE, "conditions": "_break_over",
     "after": "_next_set"},
    {"trigger": "reached", "source": [REST, CUE], "dest": HOLD, "conditions": FOLLOW,
     "after": "_open"},
    {"trigger": "reached", "source": SET_BREAK, "dest": HOLD, "conditions": FOLLOW,
     "after": ["_next_set", "_open"]},
]

CUE_LEAD_S = 1.0
"""Cued pairing: time between the cue and the start of the timed rise (to get ready)."""
LOWER_GRACE_S = 5.0
"""Following the patient: a lowering that has not reached rest this long after its
prescribed time is closed anyway, so a patient who stays up cannot stall the session."""

_TIMERS = {CUE, RISE, HOLD, LOWER, REST, SET_BREAK}
"""Phases in which time alone can move the machine (every phase but done)."""


@dataclass(frozen=True)
class Prescription:
    pairing: str
    stimulated: frozenset[ExercisePhase]
    sets: int
    reps: int
    hold_s: float
    rest_between_reps_s: float
    rest_between_sets_s: float
    rise_s: float
    lower_s: float
    assist_timeout_s: float


@dataclass(frozen=True, slots=True)
class RepetitionWindow:
    """When one repetition's phases began and ended, as the machine saw them."""

    set_index: int
    rep_index: int
    start_s: float
    hold_start_s: float | None
    lower_start_s: float | None
    end_s: float
    assisted: bool


class ExerciseMachine:
    def __init__(self, prescription: Prescription) -> None:
        self.prescription = prescription
        self.state = CUE
        self.now_s = 0.0
        self.entered_s = 0.0
        """When the current phase began."""
        self.set_index = 0
        self.reps_in_set = 0
        self.windows: list[RepetitionWindow] = []
        self.incomplete_reps = 0
        self._assisting = False
        self._assist_start_s = 0.0
        self._start_s = 0.0
        self._hold_start_s: float | None = None
        self._lower_start_s: float | None = None
        self._phase_timed = CUE
        self._machine = Machine(
            model=self, states=ExercisePhase, transitions=TRANSITIONS, initial=CUE,
            ignore_invalid_triggers=True, auto_transitions=False,
            after_state_change="_entered")

    @property
    def phase(self) -> ExercisePhase:
        return self.state

    @property
    def assisting(self) -> bool:
        return self._assisting

    @property
    def wants_stimulation(self) -> bool:
        stimulated = self.state in self.prescription.stimulated
        if self.prescription.pairing == "assist_as_needed":
            return stimulated and self._assisting
        return stimulated

    @property
    def done(self) -> bool:
        return self.state is DONE

    def begin(self, now_s: float) -> None:
        """Start the first cue's clock now (once the detector knows the rest position)."""
        self.now_s = self.entered_s = now_s

    def handle(self, trigger: str, now_s: float) -> bool:
        """A movement event (onset, reached, lowering, at_rest, abandoned, fidget); one
        that does not fit the phase (a top during the hold) is ignored."""
        self.now_s = now_s
        fits = trigger in self._machine.get_triggers(self.state.name)
        moved = fits and bool(self._machine.events[trigger].trigger(self))
        self.advance(now_s)
        return moved

    def advance(self, now_s: float) -> None:
        """Let time act: timed phases end, rests run out, assistance starts."""
        self.now_s = now_s
        while self.state in _TIMERS and self._machine.events["tick"].trigger(self):
            pass

    # -- conditions ----------------------------------------------------------------------

    def _follows_movement(self) -> bool:
        return self.prescription.pairing != "cued"

    def _timed(self) -> bool:
        return self.prescription.pairing == "cued"

    def _elapsed_s(self) -> float:
        return self.now_s - self.entered_s

    def _cue_over(self) -> bool:
        return self._elapsed_s() >= CUE_LEAD_S

    def _assist_due(self) -> bool:
        rx = self.prescription
        return (rx.pairing == "assist_as_needed" and not self._assisting
                and self._elapsed_s() >= rx.assist_timeout_s)

    def _rise_over(self) -> bool:
        return self._elapsed_s() >= self.prescription.rise_s

    def _assisted_rise_over(self) -> bool:
        """Assistance gets the rise's time to lift the foot; the hold follows either way,
        so a stimulation that cannot reach the target does not stall the session."""
        return self._assisting and self.now_s - self._assist_start_s >= self.prescription.rise_s

    def _hold_over(self) -> bool:
        return self._elapsed_s() >= self.prescription.hold_s

    def _lower_over(self) -> bool:
        grace_s = 0.0 if self._timed() else LOWER_GRACE_S
        return self._elapsed_s() >= self.prescription.lower_s + grace_s

    def _set_done(self) -> bool:
        return self.reps_in_set >= self.prescription.reps

    def _all_sets_done(self) -> bool:
        return self._set_done() and self.set_index + 1 >= self.prescription.sets

    def _rest_over(self) -> bool:
        return self._elapsed_s() >= self.prescription.rest_between_reps_s

    def _break_over(self) -> bool:
        return self._elapsed_s() >= self.prescription.rest_between_sets_s

    # -- callbacks -----------------------------------------------------------------------

    def _entered(self) -> None:
        """Runs after every transition; only a change of phase restarts its timer."""
        if self.state is self._phase_timed:
            return
        self._phase_timed = self.state
        self.entered_s = self.now_s
        if self.state is HOLD:
            self._hold_start_s = self.now_s
        elif self.state is LOWER:
            self._lower_start_s = self.now_s

    def _open(self) -> None:
        self._start_s = self.now_s
        self._hold_start_s = self._lower_start_s = None
        self._assisting = False

    def _assist(self) -> None:
        self._assisting = True
        self._assist_start_s = self.now_s

    def _drop(self) -> None:
        self.incomplete_reps += 1

    def _close(self) -> None:
        self.windows.append(RepetitionWindow(
            self.set_index, self.reps_in_set, self._start_s, self._hold_start_s,
            self._lower_start_s, self.now_s, self._assisting))
        self.reps_in_set += 1
        self._assisting = False

    def _next_set(self) -> None:
        self.set_index += 1
        self.reps_in_set = 0
