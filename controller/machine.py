"""The gait phase machine: it decides *when* to stimulate; the supervisor decides *whether*.

The whole cycle is the table below, written for the ``transitions`` library. Guards are
``conditions`` (the only place a transition can be refused); bookkeeping runs in
``after`` callbacks, which run only once a transition is committed.

The machine runs the table through a plain dictionary derived from it (:data:`ROWS`),
because the library's per-event machinery cost more than the rest of the machine on
every tick; a test runs the library on the same table and checks that both agree on
every (phase, event, guard outcome).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the table as the machine runs it."""

    dest: GaitPhase
    conditions: tuple[str, ...]
    after: tuple[str, ...]


_KEYS = frozenset({"trigger", "source", "dest", "conditions", "after"})


def _names(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def derive_rows(table: list[dict[str, Any]]) -> dict[str, dict[GaitPhase, tuple[Row, ...]]]:
    """Per trigger and source phase, the rows in table order (the first whose conditions
    pass is taken, as the library does). A row using a part of the library the machine
    does not run (``unless``, ``before``, ``prepare``...) is refused, not ignored."""
    rows: dict[str, dict[GaitPhase, list[Row]]] = {}
    for row in table:
        unknown = set(row) - _KEYS
        if unknown:
            raise ValueError(f"gait table row {row}: {sorted(unknown)} not run by the machine")
        sources = row["source"] if isinstance(row["source"], list) else [row["source"]]
        for source in sources:
            rows.setdefault(row["trigger"], {}).setdefault(source, []).append(
                Row(row["dest"], _names(row.get("conditions")), _names(row.get("after"))))
    return {trigger: {source: tuple(found) for source, found in by_source.items()}
            for trigger, by_source in rows.items()}


ROWS = derive_rows(TRANSITIONS)
_Bound = tuple[GaitPhase, tuple[Callable[[], bool], ...], tuple[Callable[[], None], ...]]


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
        self._rows: dict[str, dict[GaitPhase, tuple[_Bound, ...]]] = {
            trigger: {source: tuple((row.dest,
                                     tuple(getattr(self, name) for name in row.conditions),
                                     tuple(getattr(self, name) for name in row.after))
                                    for row in rows)
                      for source, rows in by_source.items()}
            for trigger, by_source in ROWS.items()}
        self._tick_rows = self._rows["tick"]

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
        moved = self._fire(event.kind.value)
        if not moved and event.kind not in (GaitEventKind.STILL, GaitEventKind.STEP_END):
            self.unexpected_events += 1
        self.advance(event.detected_at_s)
        return moved

    def advance(self, now_s: float) -> None:
        """Let time act: extension ends, a too-long step is closed."""
        self.now_s = now_s
        while self.state in self._tick_rows and self._fire("tick"):
            pass

    def _fire(self, trigger: str) -> bool:
        """Take the first row for ``trigger`` leaving this phase whose guards pass."""
        for dest, conditions, after in self._rows.get(trigger, {}).get(self.state, ()):
            if all(condition() for condition in conditions):
                self.state = dest
                for callback in after:
                    callback()
                return True
        return False

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
