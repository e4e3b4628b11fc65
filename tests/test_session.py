"""Whole supervised sessions on the simulator: recorded walking, injected faults, the record."""

from __future__ import annotations

import bisect
import itertools
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from controller.assembly import SimulatedRig, build_simulated_session
from controller.devices.recording import ReferenceEvent, load_recording
from controller.observe import SessionObserver
from controller.record import read_rows
from controller.runner import SessionRunner
from controller.types import FaultKind, GaitEvent, GaitEventKind, Sample
from protocols import Protocol, load_protocol
from simulator.inmemory import StimulatorMisbehaviour
from tests.faults import FAULTS, assert_latched_at_zero_and_recorded, wait_for_rows

ROOT = Path(__file__).resolve().parents[1]
GAIT = ROOT / "protocols" / "library" / "peroneal_gait_gyro.toml"
BUNDLED = ROOT / "simulator" / "data" / "walk1_2x20m_foot_imu.csv"
TURN_S = (16.0, 19.2)
"""The 180° turn of walk 1 (data README): steps there are not normal swings."""


def make_rig(tmp_path: Path, foot: str = "left", protocol: Protocol | None = None,
             recording: Path = BUNDLED) -> SimulatedRig:
    samples = load_recording(recording, foot).samples()
    return build_simulated_session(protocol or load_protocol(GAIT), samples,
                                   tmp_path / "record.sqlite", source=f"test#{foot}")


def output_at(rig: SimulatedRig, channel: int = 1) -> Callable[[float], int]:
    """What the simulated device delivered on a channel at any time, from its own log."""
    log = [d for d in rig.stimulator.model.delivered if d.channel == channel]
    times = [d.t_s for d in log]

    def at(t_s: float) -> int:
        index = bisect.bisect_right(times, t_s) - 1
        return log[index].current_ma if index >= 0 else 0
    return at


def swings_and_stances(reference: list[ReferenceEvent]) -> tuple[list[float], list[float]]:
    """Mid-swing and mid-stance instants from the reference events, outside the turn."""
    swings, stances = [], []
    for before, after in itertools.pairwise(reference):
        middle = (before.t_s + after.t_s) / 2
        if TURN_S[0] <= middle <= TURN_S[1]:
            continue
        if before.kind is GaitEventKind.TOE_OFF and after.kind is GaitEventKind.HEEL_STRIKE:
            swings.append(middle)
        if before.kind is GaitEventKind.HEEL_STRIKE and after.kind is GaitEventKind.TOE_OFF:
            stances.append(middle)
    return swings, stances


@pytest.mark.parametrize("foot", ["left", "right"])
def test_recorded_walk_is_stimulated_in_swing_and_not_in_stance(tmp_path: Path,
                                                                foot: str) -> None:
    rig = make_rig(tmp_path, foot)
    summary = rig.runner().run()
    assert summary.status == "completed"
    assert summary.faults == []
    reference = load_recording(BUNDLED, foot).reference
    swings, stances = swings_and_stances(reference)
    delivered = output_at(rig)
    stimulated = [t for t in swings if delivered(t) > 0]
    quiet = [t for t in stances if delivered(t) == 0]
    assert len(swings) >= 20 and len(stances) >= 20
    assert len(stimulated) >= 0.95 * len(swings), (len(stimulated), len(swings))
    assert len(quiet) == len(stances), sorted(set(stances) - set(quiet))
    assert summary.figures["stimulated_steps"] >= 0.9 * len(swings)


def test_record_holds_samples_events_commands_and_steps(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    summary = rig.runner().run()
    assert summary.record_path is not None
    db = Path(summary.record_path)
    count = {table: read_rows(db, f"SELECT count(*) FROM {table}")[0][0]
             for table in ("samples", "events", "commands", "steps", "phases")}
    assert count["samples"] == summary.samples == 7928
    steps = summary.figures["steps"]
    assert count["steps"] == steps > 20
    assert count["events"] > 2 * steps
    assert count["commands"] > steps
    status, stored = read_rows(db, "SELECT status, summary FROM sessions")[0]
    assert status == "completed"
    assert json.loads(stored)["stimulated_steps"] == summary.figures["stimulated_steps"]
    protocol_text = read_rows(db, "SELECT toml FROM protocols")[0][0]
    assert load_protocol(GAIT).name in protocol_text
    journal = read_rows(db, "PRAGMA journal_mode")[0][0]
    assert journal == "wal"


def test_record_reaches_the_disk_while_the_session_runs(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    rig.session.start()
    for _ in range(2000):
        rig.session.step()
    time.sleep(0.3)  # the record commits on wall time: what a kill can lose is wall time
    rig.session.step()
    assert rig.session.record is not None
    db = Path(rig.session.record.path)
    wait_for_rows(db, "SELECT * FROM samples", at_least=2000)
    newest = read_rows(db, "SELECT max(t_s) FROM samples")[0][0]
    assert rig.clock.now() - newest < 0.05
    rig.session.finish()


class ToeOffsOnly:
    """A detector that sees every toe-off but never a heel strike (a sensor knocked loose)."""

    def __init__(self, period_s: float) -> None:
        self._period_s = period_s
        self._next_s: float | None = None

    def reset(self) -> None:
        self._next_s = None

    def drain_notes(self) -> list[str]:
        return []

    def update(self, sample: Sample) -> list[GaitEvent]:
        if self._next_s is None:
            self._next_s = sample.t_s + 0.5
        if sample.t_s < self._next_s:
            return []
        self._next_s += self._period_s
        return [GaitEvent(GaitEventKind.TOE_OFF, sample.t_s, sample.t_s)]


def test_missed_heel_strike_closes_the_step_without_more_stimulation(tmp_path: Path) -> None:
    protocol = load_protocol(GAIT)
    rig = make_rig(tmp_path, protocol=protocol)
    rig.session.control._detector = ToeOffsOnly(period_s=3.0)  # type: ignore[attr-defined]
    summary = rig.runner().run()
    assert summary.record_path is not None
    limit_s = protocol.stimulation.max_burst_s
    bursts = bursts_of(rig)
    assert len(bursts) >= 10
    for start_s, end_s in bursts:
        assert end_s - start_s <= limit_s + rig.clock.tick_s
    assert summary.figures["missed_heel_strikes"] == summary.figures["steps"] == len(bursts)
    outcomes = read_rows(Path(summary.record_path), "SELECT DISTINCT outcome FROM steps")
    assert outcomes == [("missed_heel_strike",)]
    assert not any(kind == "burst_limit" for (kind,) in read_rows(
        Path(summary.record_path), "SELECT kind FROM notices")), \
        "the machine closes the step before the supervisor has to cut it"


def bursts_of(rig: SimulatedRig, channel: int = 1) -> list[tuple[float, float]]:
    """(on, off) times of every burst the simulated device delivered."""
    bursts: list[tuple[float, float]] = []
    start: float | None = None
    for d in rig.stimulator.model.delivered:
        if d.channel != channel:
            continue
        if d.current_ma and start is None:
            start = d.t_s
        elif not d.current_ma and start is not None:
            bursts.append((start, d.t_s))
            start = None
    return bursts


# -- faults injected from the simulator ---------------------------------------------------

def run_into_a_burst(rig: SimulatedRig) -> float:
    """Step until the stimulator is delivering mid-step; return the time."""
    rig.session.start()
    while not (rig.stimulator.model.is_delivering and rig.session.supervisor.output_ma(1) > 20):
        assert rig.session.step()
    return rig.clock.now()


@pytest.mark.parametrize("kind", list(FAULTS), ids=lambda k: k.value)
def test_injected_fault_zeroes_output_within_a_tick_latches_is_recorded_and_needs_reset(
        tmp_path: Path, kind: FaultKind) -> None:
    rig = make_rig(tmp_path)
    session, tick = rig.session, rig.clock.tick_s
    FAULTS[kind](rig, run_into_a_burst(rig))
    assert_latched_at_zero_and_recorded(rig, kind, hold_s=1.5)

    assert session.reset_faults(session.now_s) == []
    delivered_before = len(rig.stimulator.model.delivered)
    for _ in range(round(3.0 / tick)):
        session.step()
    assert not session.supervisor.latched
    restarted = rig.stimulator.model.delivered[delivered_before:]
    assert any(d.current_ma for d in restarted), "stimulation resumes on later steps"
    first_on = next(d for d in restarted if d.current_ma)
    assert first_on.current_ma < 10, "restart ramps up from zero"


def latched_by(misbehaviour: StimulatorMisbehaviour, tmp_path: Path) -> SimulatedRig:
    """A walk in mid-burst whose stimulator starts to ``misbehave``, run until it latches."""
    rig = make_rig(tmp_path)
    run_into_a_burst(rig)
    rig.stimulator.misbehaviour = misbehaviour
    while not rig.session.supervisor.latched:
        rig.session.step()
    return rig


def test_stimulator_that_stops_answering_is_stopped_by_its_own_watchdog(tmp_path: Path) -> None:
    rig = latched_by(StimulatorMisbehaviour.NO_ANSWER, tmp_path)
    session = rig.session
    assert session.supervisor.faults[0].kind is FaultKind.STIMULATOR_ERROR
    assert session.supervisor.output_ma(1) == 0.0
    latched_at = rig.clock.now()
    while rig.clock.now() < latched_at + 1.2:
        session.step()
        rig.stimulator.tick()
    assert rig.stimulator.model.is_delivering is False
    assert rig.stimulator.model.delivered[-1].reason.startswith("device watchdog")
    assert session.reset_faults(session.now_s), "no reset while the stimulator does not answer"


def test_a_reset_is_refused_while_the_stimulator_refuses_and_accepted_once_it_answers(
        tmp_path: Path) -> None:
    """The stimulator is configured again before the latch clears: one that still refuses
    keeps the fault (no new one, no command), one that answers again lets output restart."""
    rig = latched_by(StimulatorMisbehaviour.ERROR_ANSWER, tmp_path)
    session = rig.session
    faults = session.supervisor.faults
    remaining = session.reset_faults(session.now_s)
    assert remaining and "does not come up again" in remaining[0]
    assert session.supervisor.faults == faults, "the fault is kept, not replaced"
    assert session.supervisor.output_ma(1) == 0.0
    rig.stimulator.misbehaviour = StimulatorMisbehaviour.NONE
    assert session.reset_faults(session.now_s) == []
    assert not session.supervisor.latched
    for _ in range(300):
        session.step()
    late = [f for f in session.supervisor.fault_history if f.kind is FaultKind.LOOP_LATE]
    assert not late, "a reset's bring-up is not a late loop"


class Script(SessionObserver):
    """A test probe: runs ``(t_s, action)`` pairs on the loop's thread once session time
    reaches each ``t_s``, and keeps the channel-1 commands as the device received them."""

    def __init__(self, actions: list[tuple[float, Callable[[], None]]]) -> None:
        self._actions = sorted(actions, key=lambda pair: pair[0])
        self.outputs_ma: list[tuple[float, float]] = []

    def on_command(self, t_s: float, amplitudes_ma: Mapping[int, float]) -> None:
        self.outputs_ma.append((t_s, amplitudes_ma[1]))

    def on_tick(self, t_s: float) -> None:
        while self._actions and self._actions[0][0] <= t_s:
            self._actions.pop(0)[1]()


def test_patient_pause_resume_nudge_and_stop_through_the_runner(tmp_path: Path) -> None:
    holder: list[SessionRunner] = []
    script = Script([
        (8.0, lambda: holder[0].pause()),
        (11.0, lambda: holder[0].resume()),
        (14.0, lambda: holder[0].nudge(1, +3)),
        (20.0, lambda: holder[0].stop("patient")),
    ])
    samples = load_recording(BUNDLED, "left").samples()
    rig = build_simulated_session(load_protocol(GAIT), samples, tmp_path / "record.sqlite",
                                  source="test#left", observers=[script])
    runner = rig.runner()
    holder.append(runner)
    setting_before = rig.session.supervisor.setting_ma(1)
    summary = runner.run()
    assert summary.status == "stopped"
    ended_s = samples[0].t_s + summary.duration_s
    assert 20.0 <= ended_s <= 20.0 + 2 * rig.clock.tick_s
    paused = [ma for t, ma in script.outputs_ma if 8.0 + 0.5 <= t < 11.0]
    assert not paused or max(paused) == 0.0, "nothing but the ramp-down while paused"
    assert rig.session.supervisor.setting_ma(1) == setting_before + 3
    later = [ma for t, ma in script.outputs_ma if t >= 15.0]
    assert max(later) > max(ma for t, ma in script.outputs_ma if t < 8.0)
    assert rig.stimulator.model.is_delivering is False
    assert summary.record_path is not None
    notices = [kind for (kind,) in read_rows(Path(summary.record_path),
                                             "SELECT kind FROM notices")]
    assert notices == ["pause", "resume", "nudge", "stop"]
