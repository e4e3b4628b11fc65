"""The gait phase machine alone: events in, phases and step outcomes out."""

from __future__ import annotations

import importlib.util
import itertools
import sys

import pytest
from transitions import Machine

from controller.compiled_modules import source_path
from controller.machine import TRANSITIONS, GaitMachine, GaitPhase, StepOutcome, derive_rows
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


def _table_names(key: str) -> list[str]:
    names: set[str] = set()
    for row in TRANSITIONS:
        value = row.get(key, [])
        names.update([value] if isinstance(value, str) else value)
    return sorted(names)


def _machine_from_source() -> type:
    """GaitMachine as its source runs: the probe subclasses it, which a class compiled with
    mypyc does not allow (the compiled one runs the same source)."""
    spec = importlib.util.spec_from_file_location("machine_source",
                                                  source_path("controller.machine"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while made
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    machine: type = module.GaitMachine
    return machine


def _probe(base: type, guards: dict[str, bool], callbacks: list[str],
           calls: list[str]) -> type:
    """``base`` with its guards answering ``guards`` and its callbacks logged in ``calls``."""
    namespace: dict[str, object] = {
        guard: (lambda self, value=value: value) for guard, value in guards.items()}
    namespace.update({name: (lambda self, name=name: calls.append(name)) for name in callbacks})
    return type(f"Probe{base.__name__}", (base,), namespace)


def test_the_machines_dictionary_agrees_with_the_library_on_the_table() -> None:
    """Every phase, every trigger (the table's and every detector event's) and every
    outcome of the guards: the library run on ``TRANSITIONS`` and the machine's derived
    dictionary take the same row, land in the same phase and run the same callbacks."""
    guards, callbacks = _table_names("conditions"), _table_names("after")
    triggers = sorted({row["trigger"] for row in TRANSITIONS} | {k.value for k in GaitEventKind})
    compared = moved = 0
    source_machine = _machine_from_source()
    for outcomes in itertools.product([False, True], repeat=len(guards)):
        for phase in GaitPhase:
            for trigger in triggers:
                guarded = dict(zip(guards, outcomes, strict=True))
                library_calls: list[str] = []
                model = _probe(object, guarded, callbacks, library_calls)()
                Machine(model=model, states=GaitPhase, transitions=TRANSITIONS, initial=phase,
                        ignore_invalid_triggers=True, auto_transitions=False)
                by_library = model.trigger(trigger)
                machine_calls: list[str] = []
                machine = _probe(source_machine, guarded, callbacks, machine_calls)(
                    "heel_off", 0.1, 1.3)
                machine.state = phase
                by_machine = machine._fire(trigger)
                assert (by_machine, machine.state, machine_calls) == (
                    by_library, model.state, library_calls), (phase, trigger, outcomes)
                compared += 1
                moved += by_library
    assert moved > 0 and compared == 2 ** len(guards) * len(GaitPhase) * len(triggers)


def test_a_table_row_the_machine_does_not_run_is_refused() -> None:
    with pytest.raises(ValueError, match="unless"):
        derive_rows([{"trigger": "tick", "source": GaitPhase.SWING,
                      "dest": GaitPhase.STANCE, "unless": "_step_too_long"}])
