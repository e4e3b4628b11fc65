"""The gait phase machine alone: events in, phases and step outcomes out."""

from __future__ import annotations

from controller.machine import GaitMachine, GaitPhase, StepOutcome
from controller.types import GaitEvent, GaitEventKind

DELAY_S = 0.02


def feed(machine: GaitMachine, kind: GaitEventKind, t_s: float) -> bool:
    return machine.handle(GaitEvent(kind, t_s, t_s + DELAY_S))


def test_a_normal_step_stimulates_from_heel_off_through_extension() -> None:
    machine = GaitMachine("heel_off", extension_s=0.1, step_limit_s=1.3)
    assert not machine.wants_stimulation
    feed(machine, GaitEventKind.HEEL_OFF, 1.0)
    assert machine.phase is GaitPhase.HEEL_OFF and machine.wants_stimulation
    feed(machine, GaitEventKind.TOE_OFF, 1.1)
    feed(machine, GaitEventKind.MID_SWING, 1.3)
    assert machine.phase is GaitPhase.SWING and machine.wants_stimulation
    feed(machine, GaitEventKind.HEEL_STRIKE, 1.5)
    assert machine.phase is GaitPhase.EXTENSION and machine.wants_stimulation
    machine.advance(1.59)
    assert machine.phase is GaitPhase.EXTENSION
    machine.advance(1.6)
    assert machine.phase is GaitPhase.STANCE and not machine.wants_stimulation
    step, = machine.steps
    assert step.outcome is StepOutcome.COMPLETED
    assert step.heel_strike_s == 1.5
    assert machine.unexpected_events == 0


def test_toe_off_protocol_does_not_stimulate_at_heel_off() -> None:
    machine = GaitMachine("toe_off", extension_s=0.0, step_limit_s=1.3)
    feed(machine, GaitEventKind.HEEL_OFF, 1.0)
    assert not machine.wants_stimulation
    feed(machine, GaitEventKind.TOE_OFF, 1.1)
    assert machine.wants_stimulation
    feed(machine, GaitEventKind.HEEL_STRIKE, 1.5)
    assert machine.phase is GaitPhase.STANCE, "no extension: straight back to stance"


def test_heel_strike_missed_closes_step_without_stimulation() -> None:
    machine = GaitMachine("heel_off", extension_s=0.1, step_limit_s=1.3)
    feed(machine, GaitEventKind.TOE_OFF, 2.0)
    machine.advance(3.3)
    assert machine.phase is GaitPhase.SWING
    machine.advance(2.0 + DELAY_S + 1.3)
    assert machine.phase is GaitPhase.STANCE and not machine.wants_stimulation
    assert machine.steps[-1].outcome is StepOutcome.MISSED_HEEL_STRIKE
    feed(machine, GaitEventKind.HEEL_STRIKE, 3.5)
    assert machine.phase is GaitPhase.STANCE, "a late heel strike does not reopen the step"
    assert machine.unexpected_events == 1


def test_standing_still_mid_step_stops_stimulation() -> None:
    machine = GaitMachine("heel_off", extension_s=0.1, step_limit_s=1.3)
    feed(machine, GaitEventKind.HEEL_OFF, 1.0)
    feed(machine, GaitEventKind.STILL, 1.2)
    assert machine.phase is GaitPhase.STANCE and not machine.wants_stimulation
    assert machine.steps[-1].outcome is StepOutcome.STOPPED


def test_events_that_do_not_fit_the_phase_are_counted_and_ignored() -> None:
    machine = GaitMachine("heel_off", extension_s=0.1, step_limit_s=1.3)
    assert not feed(machine, GaitEventKind.HEEL_STRIKE, 0.5)
    feed(machine, GaitEventKind.TOE_OFF, 1.0)
    assert not feed(machine, GaitEventKind.HEEL_OFF, 1.1)
    assert not feed(machine, GaitEventKind.TOE_OFF, 1.2)
    assert machine.phase is GaitPhase.SWING
    assert machine.unexpected_events == 3


def test_the_timer_short_cut_asks_exactly_the_tables_tick_rows() -> None:
    """A timed row added to the table is seen by the short-cut without touching it."""
    from controller.machine import _TICK_GUARDS, TRANSITIONS

    tick_rows = [row for row in TRANSITIONS if row["trigger"] == "tick"]
    sources = [source for row in tick_rows for source in
               (row["source"] if isinstance(row["source"], list) else [row["source"]])]
    assert sum(len(guards) for guards in _TICK_GUARDS.values()) == len(sources)
    assert set(_TICK_GUARDS) == set(sources)
