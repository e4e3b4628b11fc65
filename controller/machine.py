"""The gait phase machine: it decides *when* to stimulate; the supervisor decides *whether*.

The whole cycle is the table below. Guards are ``conditions`` (the only place a
transition can be refused); bookkeeping runs in ``after`` / ``on_enter`` callbacks,
which run only once a transition is committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from transitions import Machine

from controller.types import GaitEvent, GaitEventKind


class GaitPhase(str, Enum):
    STANCE = "stance"
    HEEL_OFF = "heel_off"
    SWING = "swing"
    HEEL_STRIKE = "heel_strike"
    EXTENSION = "extension"


class StepOutcome(str, Enum):
    COMPLETED = "completed"
    MISSED_HEEL_STRIKE = "missed_heel_strike"
    """No heel strike found: closed by the detector (step end) or by the step's time limit,
    output stopped."""
    STOPPED = "stopped"
    """The walker stood still or sat down mid-step."""


@dataclass(frozen=True, slots=True)
class Step:
    index: int
    start_s: float
    end_s: float
    heel_strike_s: float | None
    outcome: StepOutcome


STANCE, HEEL_OFF, SWING, HEEL_STRIKE, EXTENSION = GaitPhase
_IN_STEP = [HEEL_OFF, SWING]
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "heel_off", "source": STANCE, "dest": HEEL_OFF, "after": "_open_step"},
    {"trigger": "toe_off", "source": STANCE, "dest": SWING, "after": "_open_step"},
    {"trigger": "toe_off", "source": HEEL_OFF, "dest": SWING},
    {"trigger": "heel_strike", "source": _IN_STEP, "dest": HEEL_STRIKE,
     "after": "_mark_heel_strike"},
    {"trigger": "tick", "source": HEEL_STRIKE, "dest": EXTENSION,
     "conditions": "_wants_extension"},
    {"trigger": "tick", "source": HEEL_STRIKE, "dest": STANCE, "after": "_close_completed"},
    {"trigger": "tick", "source": EXTENSION, "dest": STANCE,
     "conditions": "_extension_over", "after": "_close_completed"},
    {"trigger": "tick", "source": _IN_STEP, "dest": STANCE,
     "conditions": "_step_too_long", "after": "_close_missed"},
    {"trigger": "step_end", "source": _IN_STEP, "dest": STANCE, "after": "_close_missed"},
    {"trigger": "still", "source": [*_IN_STEP, HEEL_STRIKE, EXTENSION], "dest": STANCE,
     "after": "_close_stopped"},
]
STIMULATED = frozenset({SWING, HEEL_STRIKE, EXTENSION})
"""Phases in which stimulation is wanted; ``heel_off`` too when a protocol starts on it."""

_TRIGGERS_FROM: dict[GaitPhase, set[str]] = {}
_TICK_GUARDS: dict[GaitPhase, list[list[str]]] = {}
"""Per phase, the conditions of each ``tick`` row leaving it (an empty list: none)."""
for _row in TRANSITIONS:
    for _source in (_row["source"] if isinstance(_row["source"], list) else [_row["source"]]):
        _TRIGGERS_FROM.setdefault(_source, set()).add(_row["trigger"])
        if _row["trigger"] == "tick":
            guards = _row.get("conditions", [])
            _TICK_GUARDS.setdefault(_source, []).append(
                [guards] if isinstance(guards, str) else list(guards))


class GaitMachine:
    """One leg's gait phases, driven by detector events and the sensor clock."""

    def __init__(self, start_on: str, extension_s: float, step_limit_s: float) -> None:
        self._stimulated_states = STIMULATED | ({HEEL_OFF} if start_on == "heel_off" else set())
        self._extension_s = extension_s
        self._step_limit_s = step_limit_s
        self.state = STANCE
        self.now_s = 0.0
        self.steps: list[Step] = []
        self.unexpected_events = 0
        self._step_start_s = 0.0
        self._heel_strike_s: float | None = None
        self._machine = Machine(
            model=self, states=GaitPhase, transitions=TRANSITIONS, initial=STANCE,
            ignore_invalid_triggers=True, auto_transitions=False)

    @property
    def phase(self) -> GaitPhase:
        return self.state

    @property
    def wants_stimulation(self) -> bool:
        return self.state in self._stimulated_states

    def handle(self, event: GaitEvent) -> bool:
        """Feed one detector event at the time it was detected; returns whether it moved.

        An event that does not fit the phase (a heel strike during stance) is counted
        and ignored, never acted on. Mid-swing carries no decision.
        """
        if event.kind is GaitEventKind.MID_SWING:
            return False
        self.now_s = event.detected_at_s
        if event.kind is GaitEventKind.HEEL_STRIKE:
            self._heel_strike_s = event.t_s
        trigger = event.kind.value
        moved = trigger in _TRIGGERS_FROM[self.state] and self._fire(trigger)
        if not moved and event.kind not in (GaitEventKind.STILL, GaitEventKind.STEP_END):
            self.unexpected_events += 1
        self.advance(event.detected_at_s)
        return moved

    def advance(self, now_s: float) -> None:
        """Let time act: extension ends, a too-long step is closed.

        The guards decide; ``_timer_due`` asks the same guards first, only to spare the
        machine its dispatch on every tick of a step when no timer can have run out yet.
        """
        self.now_s = now_s
        while "tick" in _TRIGGERS_FROM[self.state] and self._timer_due() and self._fire("tick"):
            pass

    def _timer_due(self) -> bool:
        """Whether any ``tick`` row leaving this phase would pass its guards: the table's
        own conditions, evaluated without the machine's per-call overhead."""
        return any(all(getattr(self, guard)() for guard in guards)
                   for guards in _TICK_GUARDS[self.state])

    def _fire(self, trigger: str) -> bool:
        return bool(self._machine.events[trigger].trigger(self))

    # -- conditions and callbacks ----------------------------------------------------

    def _wants_extension(self) -> bool:
        return self._extension_s > 0.0 and not self._extension_over()

    def _extension_over(self) -> bool:
        hs = self._heel_strike_s if self._heel_strike_s is not None else self.now_s
        return self.now_s >= hs + self._extension_s

    def _step_too_long(self) -> bool:
        return self.now_s - self._step_start_s >= self._step_limit_s

    def _open_step(self) -> None:
        self._step_start_s = self.now_s
        self._heel_strike_s = None

    def _mark_heel_strike(self) -> None:
        if self._heel_strike_s is None:
            self._heel_strike_s = self.now_s

    def _close_completed(self) -> None:
        self._close(StepOutcome.COMPLETED)

    def _close_missed(self) -> None:
        self._close(StepOutcome.MISSED_HEEL_STRIKE)

    def _close_stopped(self) -> None:
        self._close(StepOutcome.STOPPED)

    def _close(self, outcome: StepOutcome) -> None:
        heel_strike = self._heel_strike_s if outcome is StepOutcome.COMPLETED else None
        self.steps.append(Step(len(self.steps), self._step_start_s, self.now_s, heel_strike,
                               outcome))
        self._heel_strike_s = None
