"""Whole exercise sessions on the synthetic limb: each pairing, what is counted, the
per-repetition figures against the limb's own truth, and faults during a hold."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from controller.assembly import SimulatedRig
from controller.assembly.simulated import simulate_exercise
from controller.detect.exercise import REST_FRACTION
from controller.exercise_control import HOLD_TOLERANCE
from controller.exercise_machine import CUE_LEAD_S
from controller.observe import SessionObserver
from controller.record import read_rows
from controller.types import (
    Cue,
    DetectorEvent,
    ExerciseEvent,
    ExerciseEventKind,
    FaultKind,
    Repetition,
    Unit,
)
from protocols import ExerciseProtocol, load_protocol
from simulator.limb import PatientScript, SimulatedLimb
from simulator.motion import MotionFault
from tests.faults import FAULTS, assert_latched_at_zero_and_recorded, motion

LIBRARY = Path(__file__).resolve().parents[1] / "protocols" / "library"
STILL_DPS = 12.0
"""The reference rule of the shared exercise data: an onset is the last moment before the
peak with the angle within 10 % of it and turning slower than this."""


def protocol(name: str, **exercise: Any) -> ExerciseProtocol:
    """A bundled exercise protocol, with changes to its [exercise] (validated again)."""
    loaded = load_protocol(LIBRARY / f"exercise_{name}.toml")
    assert isinstance(loaded, ExerciseProtocol)
    data = loaded.model_dump()
    data["exercise"].update(exercise)
    return ExerciseProtocol.model_validate(data)


def without_ramp_up(rx: ExerciseProtocol) -> ExerciseProtocol:
    data = rx.model_dump()
    data["stimulation"]["ramp_up_s"] = 0.0
    return ExerciseProtocol.model_validate(data)


@dataclass
class Probe(SessionObserver):
    events: list[ExerciseEvent] = field(default_factory=list)
    reps: list[Repetition] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)
    commands: list[tuple[float, float]] = field(default_factory=list)

    def on_event(self, event: DetectorEvent) -> None:
        assert isinstance(event, ExerciseEvent)
        self.events.append(event)

    def on_unit(self, unit: Unit) -> None:
        assert isinstance(unit, Repetition)
        self.reps.append(unit)

    def on_cue(self, cue: Cue) -> None:
        self.cues.append(cue)

    def on_command(self, t_s: float, amplitudes_ma: Mapping[int, float]) -> None:
        self.commands.append((t_s, amplitudes_ma[1]))

    def onsets_s(self) -> list[float]:
        return [e.detected_at_s for e in self.events if e.kind is ExerciseEventKind.ONSET]

    def bursts_start_s(self) -> list[float]:
        """When each stretch of non-zero output was commanded."""
        starts, previous = [], 0.0
        for t_s, amplitude_ma in self.commands:
            if amplitude_ma and not previous:
                starts.append(t_s)
            previous = amplitude_ma
        return starts


def run(rx: ExerciseProtocol, tmp_path: Path, seconds: float,
        script: PatientScript | None = None, rate_hz: float = 100.0
        ) -> tuple[SimulatedRig, SimulatedLimb, Probe]:
    probe = Probe()
    rig, limb = simulate_exercise(rx, tmp_path / "record.sqlite", script=script,
                                  rate_hz=rate_hz, duration_s=seconds, observers=[probe])
    rig.runner().run()
    return rig, limb, probe


# -- pairings -------------------------------------------------------------------------------

def test_triggered_stimulation_starts_within_a_tick_of_each_onset_and_never_without_one(
        tmp_path: Path) -> None:
    rx = without_ramp_up(protocol("seated_dorsiflexion"))
    rig, _, probe = run(rx, tmp_path, 45.0)
    tick_s = rig.clock.tick_s
    onsets, bursts = probe.onsets_s(), probe.bursts_start_s()
    assert len(probe.reps) >= 3 and len(bursts) == len(probe.reps)
    for start_s in bursts:
        before = [t for t in onsets if t <= start_s + 1e-9]
        assert before and start_s - before[-1] <= tick_s + 1e-9, \
            f"burst at {start_s:.2f} s is not one tick after an onset"
    for onset_s in onsets:
        assert any(-1e-9 <= start_s - onset_s <= tick_s + 1e-9 for start_s in bursts)


def test_cued_stimulation_follows_the_timer_for_a_patient_who_does_not_move(
        tmp_path: Path) -> None:
    rx = without_ramp_up(protocol("assisted_toe_raises"))
    assert rx.exercise.pairing == "cued"
    rig, limb, probe = run(rx, tmp_path, 30.0, PatientScript(rom_deg=0.0))
    starts = [cue.t_s for cue in probe.cues if cue.kind == "start"]
    bursts = probe.bursts_start_s()
    assert len(bursts) >= 2
    for start_s, burst_s in zip(starts, bursts, strict=False):
        assert abs(burst_s - (start_s + CUE_LEAD_S)) <= 2 * rig.clock.tick_s
    assert max(limb.truth.own_deg) == 0.0, "the patient did not move"
    moved = [rep.peak_angle_deg for rep in probe.reps]
    assert len(moved) >= 2 and min(moved) > 5.0, "the stimulation moved the foot"


def test_assist_as_needed_leaves_a_patient_who_reaches_the_target_alone(
        tmp_path: Path) -> None:
    rx = protocol("band_dorsiflexion")
    script = PatientScript(rom_deg=1.3 * rx.exercise.target_rom_deg)
    rig, _, probe = run(rx, tmp_path, 35.0, script)
    assert len(probe.reps) >= 2
    assert probe.bursts_start_s() == [] and not any(rep.assisted for rep in probe.reps)
    assert rig.session.summary().charge_uc[1] == 0.0


def test_assist_as_needed_helps_only_after_the_patient_falls_short_in_time(
        tmp_path: Path) -> None:
    rx = without_ramp_up(protocol("band_dorsiflexion"))
    script = PatientScript(rom_deg=0.5 * rx.exercise.target_rom_deg)
    rig, _, probe = run(rx, tmp_path, 35.0, script)
    onsets, bursts = probe.onsets_s(), probe.bursts_start_s()
    assert len(probe.reps) >= 2 and all(rep.assisted for rep in probe.reps)
    for burst_s in bursts:
        onset_s = max(t for t in onsets if t <= burst_s)
        waited_s = burst_s - onset_s
        assert abs(waited_s - rx.exercise.assist_timeout_s) <= 2 * rig.clock.tick_s
    reached = [rep.peak_angle_deg for rep in probe.reps]
    assert min(reached) >= rx.exercise.target_rom_deg * 0.9, "the assistance got there"


def test_a_patient_who_does_not_move_gets_no_triggered_stimulation(tmp_path: Path) -> None:
    rig, _, probe = run(protocol("seated_dorsiflexion"), tmp_path, 25.0,
                        PatientScript(rom_deg=0.0))
    assert probe.onsets_s() == [] and probe.reps == [] and probe.bursts_start_s() == []
    assert rig.session.control.phase == "cue"


def test_a_pause_holds_the_prescription_and_its_timers(tmp_path: Path) -> None:
    rx = protocol("seated_dorsiflexion")
    probe = Probe()
    rig, _ = simulate_exercise(rx, tmp_path / "record.sqlite", observers=[probe])
    session = rig.session
    session.start()
    while session.control.phase != "rest":
        assert session.step()
    rest_began_s = session.now_s
    while session.now_s < rest_began_s + 2.0:
        session.step()
    session.pause(session.now_s)
    while session.now_s < rest_began_s + 12.0:
        session.step()
        assert session.control.phase == "rest" and session.supervisor.output_ma(1) == 0.0
    session.resume(session.now_s)
    while session.control.phase == "rest":
        session.step()
    rest_left_s = rx.exercise.rest_between_reps_s - 2.0
    assert session.now_s - (rest_began_s + 12.0) == pytest.approx(rest_left_s, abs=0.05)
    assert [c.kind for c in probe.cues].count("paused") == 1


# -- what is counted ------------------------------------------------------------------------

def test_fidgets_and_incomplete_repetitions_are_not_counted(tmp_path: Path) -> None:
    rx = protocol("seated_dorsiflexion", stimulate=[])
    script = PatientScript(rom_deg=22.0, incomplete_reps=frozenset({2}),
                           fidgets_at_s=(7.5, 9.0), fidget_deg=6.5)
    rig, _, probe = run(rx, tmp_path, 48.0, script)
    kinds = [e.kind for e in probe.events]
    assert kinds.count(ExerciseEventKind.FIDGET) == 2
    assert kinds.count(ExerciseEventKind.ABANDONED) == 1
    figures = rig.session.summary().figures
    assert figures["incomplete_reps"] == 1
    completed = kinds.count(ExerciseEventKind.AT_REST)
    assert figures["reps_done"] == completed == len(probe.reps) >= 3
    assert all(rep.peak_angle_deg > 15.0 for rep in probe.reps)


@dataclass(frozen=True)
class TrueRep:
    onset_s: float
    reached_s: float
    peak_deg: float
    hold_s: float
    lower_s: float | None


def truth_of(limb: SimulatedLimb, rep: Repetition, rest_band_deg: float) -> TrueRep:
    """The repetition's figures from the limb's noise-free angle, by the rules the
    controller states: onset by the shared data's reference rule, the top reached when the
    angle is first within 10 % of the peak, hold within 10 % of the peak, lowering from leaving the hold to back near rest (within the onset threshold or
    a fifth of the peak)."""
    t_s = np.asarray(limb.truth.t_s)
    angle = np.asarray(limb.truth.own_deg) + np.asarray(limb.truth.stimulated_deg)
    inside = (t_s >= rep.onset_s - 1.0) & (t_s <= rep.end_s)
    t_s, angle = t_s[inside], angle[inside]
    top = int(np.argmax(angle))
    peak = float(angle[top])
    rate = np.gradient(angle, t_s)
    quiet = np.nonzero((rate[:top] <= STILL_DPS) & (angle[:top] <= 0.1 * peak))[0]
    held = angle >= peak * (1 - HOLD_TOLERANCE)
    hold_s = float(np.sum(np.diff(t_s, append=t_s[-1])[held]))
    hold_end = top + int(np.argmin(held[top:]))
    back = np.nonzero(angle[hold_end:] <= max(rest_band_deg, REST_FRACTION * peak))[0]
    lower_s = float(t_s[hold_end + back[0]] - t_s[hold_end]) if len(back) else None
    reached_s = float(t_s[int(np.argmax(held))])
    return TrueRep(float(t_s[quiet[-1]]), reached_s, peak, hold_s, lower_s)


@pytest.mark.parametrize("rate_hz", [25.0, 100.0, 250.0])
def test_per_repetition_figures_match_the_limb_within_2_degrees_and_50_ms(
        tmp_path: Path, rate_hz: float) -> None:
    rx = protocol("seated_dorsiflexion")
    script = PatientScript(rom_deg=18.0, lower_s=2.0, rest_drift_deg_per_min=3.0)
    _, limb, probe = run(rx, tmp_path, 50.0, script, rate_hz=rate_hz)
    assert len(probe.reps) >= 4
    for rep in probe.reps:
        true = truth_of(limb, rep, rx.exercise.onset_threshold_deg)
        assert abs(rep.peak_angle_deg - true.peak_deg) <= 2.0
        assert abs(rep.onset_s - true.onset_s) <= 0.05
        assert abs(rep.time_to_peak_s - (true.reached_s - true.onset_s)) <= 0.05
        assert abs(rep.hold_s - true.hold_s) <= 0.05
        assert rep.lower_s is not None and true.lower_s is not None
        assert abs(rep.lower_s - true.lower_s) <= 0.05
    assert read_rows(tmp_path / "record.sqlite",
                     "SELECT count(*) FROM repetitions")[0][0] == len(probe.reps)


def test_fatigue_shows_as_a_shrinking_range(tmp_path: Path) -> None:
    rx = protocol("seated_dorsiflexion", stimulate=[])
    _, _, probe = run(rx, tmp_path, 50.0, PatientScript(rom_deg=30.0, fatigue_per_rep=0.1))
    roms = [rep.peak_angle_deg for rep in probe.reps]
    assert len(roms) >= 4 and all(later < earlier for earlier, later in itertools.pairwise(roms))


# -- faults during a hold -------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(FAULTS), ids=lambda k: k.value)
def test_a_fault_during_a_hold_zeroes_output_within_a_tick_latches_and_is_recorded(
        tmp_path: Path, kind: FaultKind) -> None:
    rx = protocol("seated_dorsiflexion")
    rig, _ = simulate_exercise(rx, tmp_path / "record.sqlite")
    session = rig.session
    session.start()
    setting_ma = session.supervisor.setting_ma(1)
    while not (session.control.phase == "hold"
               and session.supervisor.output_ma(1) >= setting_ma):
        assert session.step()
    inject = FAULTS[kind]
    if kind is FaultKind.SENSOR_FROZEN:
        # A still foot in a hold is a lesser sign of a dead sensor than during walking, so
        # an exercise protocol allows longer before calling identical samples frozen.
        inject = motion(MotionFault.FROZEN, rx.safety.sensor_frozen_s + 0.5)
    inject(rig, rig.clock.now())
    assert_latched_at_zero_and_recorded(rig, kind, hold_s=1.0)


