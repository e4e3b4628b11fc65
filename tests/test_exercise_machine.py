"""The exercise machine on its own: each pairing, rests, sets, incomplete repetitions."""

from __future__ import annotations

from controller.exercise_machine import (
    CUE_LEAD_S,
    ExerciseMachine,
    ExercisePhase,
    Prescription,
)

CUE, RISE, HOLD, LOWER, REST, SET_BREAK, DONE = ExercisePhase


def prescription(pairing: str, stimulated: set[ExercisePhase] | None = None,
                 **changes: float) -> Prescription:
    values = {"sets": 2, "reps": 2, "hold_s": 3.0, "rest_between_reps_s": 2.0,
              "rest_between_sets_s": 10.0, "rise_s": 1.0, "lower_s": 2.0,
              "assist_timeout_s": 1.5, **changes}
    return Prescription(pairing=pairing, stimulated=frozenset(stimulated or {RISE, HOLD}),
                        **values)  # type: ignore[arg-type]


def run_until(machine: ExerciseMachine, t_s: float, tick_s: float = 0.01) -> None:
    while machine.now_s < t_s - 1e-9:
        machine.advance(round(machine.now_s + tick_s, 6))


def test_triggered_follows_the_patient_and_stimulates_rise_and_hold_only() -> None:
    machine = ExerciseMachine(prescription("triggered"))
    run_until(machine, 5.0)
    assert machine.phase is CUE and not machine.wants_stimulation, "no output without onset"
    machine.handle("onset", 5.0)
    assert machine.phase is RISE and machine.wants_stimulation
    machine.handle("reached", 5.8)
    run_until(machine, 8.79)
    assert machine.phase is HOLD and machine.wants_stimulation
    run_until(machine, 8.81)
    assert machine.phase is LOWER and not machine.wants_stimulation
    machine.handle("at_rest", 10.5)
    assert machine.phase is REST
    window = machine.windows[0]
    assert (window.start_s, window.hold_start_s, window.lower_start_s, window.end_s) == (
        5.0, 5.8, 8.8, 10.5)
    run_until(machine, 12.5)
    assert machine.phase is CUE, "the rest between reps is prescribed"


def test_a_rise_that_falls_back_without_a_top_is_not_a_repetition() -> None:
    machine = ExerciseMachine(prescription("triggered"))
    machine.handle("onset", 1.0)
    machine.handle("abandoned", 1.6)
    assert machine.phase is CUE and machine.windows == [] and machine.incomplete_reps == 1
    machine.handle("onset", 2.0)
    machine.handle("fidget", 2.3)
    assert machine.phase is CUE and machine.windows == [] and machine.incomplete_reps == 1, \
        "a fidget is not even an incomplete repetition"


def test_early_lowering_ends_the_hold() -> None:
    machine = ExerciseMachine(prescription("triggered"))
    machine.handle("onset", 1.0)
    machine.handle("reached", 1.5)
    machine.handle("lowering", 2.5)
    assert machine.phase is LOWER


def test_cued_runs_on_the_clock_with_no_movement_at_all() -> None:
    rx = prescription("cued", stimulated={RISE, HOLD})
    machine = ExerciseMachine(rx)
    on: list[float] = []
    t_s = 0.0
    while not machine.done and t_s < 200:
        t_s = round(t_s + 0.01, 6)
        machine.advance(t_s)
        if machine.wants_stimulation:
            on.append(t_s)
    cycle_s = CUE_LEAD_S + rx.rise_s + rx.hold_s + rx.lower_s
    assert len(machine.windows) == 4
    assert [round(w.start_s, 2) for w in machine.windows[:2]] == [
        CUE_LEAD_S, round(CUE_LEAD_S + cycle_s + rx.rest_between_reps_s, 2)]
    assert abs(len(on) * 0.01 - 4 * (rx.rise_s + rx.hold_s)) < 0.1
    assert machine.phase is DONE


def test_sets_are_separated_by_the_set_break_and_the_session_ends_when_all_are_done() -> None:
    machine = ExerciseMachine(prescription("triggered", rest_between_reps_s=0.0))
    t_s = 0.0
    phases = []
    for _ in range(4):
        for trigger in ("onset", "reached"):
            t_s += 0.5
            machine.handle(trigger, t_s)
        t_s += 3.0
        run_until(machine, t_s)
        t_s += 1.0
        machine.handle("at_rest", t_s)
        t_s += 0.02
        run_until(machine, t_s)
        phases.append(machine.phase)
        if machine.phase is SET_BREAK:
            t_s += 10.0
            run_until(machine, t_s)
    assert phases == [CUE, SET_BREAK, CUE, DONE]
    assert [(w.set_index, w.rep_index) for w in machine.windows] == [(0, 0), (0, 1), (1, 0),
                                                                     (1, 1)]


def test_assist_as_needed_stimulates_only_when_the_target_is_late() -> None:
    machine = ExerciseMachine(prescription("assist_as_needed"))
    machine.handle("onset", 1.0)
    machine.handle("reached", 1.8)
    assert machine.phase is HOLD and not machine.wants_stimulation, "reached in time"
    run_until(machine, 4.8)
    machine.handle("at_rest", 6.0)
    run_until(machine, 8.01)
    assert machine.phase is CUE
    machine.handle("onset", 8.5)
    run_until(machine, 9.99)
    assert machine.phase is RISE and not machine.wants_stimulation
    run_until(machine, 10.01)
    assert machine.assisting and machine.wants_stimulation, "too slow: assistance starts"
    machine.handle("reached", 10.6)
    assert machine.phase is HOLD and machine.wants_stimulation


def test_assist_as_needed_moves_a_patient_who_does_not_start() -> None:
    machine = ExerciseMachine(prescription("assist_as_needed"))
    run_until(machine, 1.49)
    assert machine.phase is CUE
    run_until(machine, 1.51)
    assert machine.phase is RISE and machine.assisting and machine.wants_stimulation
    machine.handle("abandoned", 1.6)
    assert machine.phase is RISE, "an assisted rise is not dropped as incomplete"


def test_a_repetition_done_before_the_rest_is_over_is_counted_from_its_top() -> None:
    machine = ExerciseMachine(prescription("triggered", rest_between_reps_s=5.0))
    machine.handle("onset", 1.0)
    machine.handle("reached", 1.8)
    run_until(machine, 4.8)
    machine.handle("at_rest", 6.0)
    assert machine.phase is REST
    machine.handle("onset", 6.5)
    assert machine.phase is REST, "an onset alone (maybe a fidget) does not end the rest"
    machine.handle("reached", 7.2)
    assert machine.phase is HOLD and machine.wants_stimulation, "its hold is stimulated"
    run_until(machine, 10.3)
    machine.handle("at_rest", 11.0)
    assert len(machine.windows) == 2 and machine.windows[1].start_s == 7.2


def test_a_patient_already_rising_when_the_cue_comes_is_followed() -> None:
    machine = ExerciseMachine(prescription("triggered"))
    machine.handle("reached", 2.0)
    assert machine.phase is HOLD


def test_the_cued_pairing_does_not_follow_movement() -> None:
    machine = ExerciseMachine(prescription("cued"))
    machine.handle("reached", 0.5)
    assert machine.phase is CUE
