"""The controller against ``fes-sim`` over real pseudo-terminals: a walk, every device fault,
and a controller killed mid-burst.

Timing across the two processes: ``fes-sim`` stamps its delivered log and its trace with
``time.monotonic()``, and the controller's session clock on serial devices is
``time.monotonic()`` too (``controller.run``), so the record's fault times and the
simulator's output times are on one clock (CLOCK_MONOTONIC, shared by every process on the
machine). "Within one control tick of the fault becoming visible" is then measured as: the
simulated stimulator's output went to zero no later than the recorded fault time plus one
tick (10 ms). The recorded fault time is the tick at which the controller saw the fault: an
unanswered command only becomes a fault when its 100 ms deadline passes, silence when it
exceeds ``sensor_silent_s``, and so on.

Where the controller cannot reach the stimulator any more (it stopped listening, or its
port vanished), the device's own watchdog stops the output: that is measured from the
injection, which is when the device last heard anything.
"""

from __future__ import annotations

import bisect
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controller.assembly.hardware import TICK_S, DeviceSession, build_device_session
from controller.cli import main
from controller.devices.recording import load_recording
from controller.record import read_rows
from controller.runner import SessionRunner
from protocols import load_protocol
from tests.sim_process import SimProcess, running_simulator, wait_for
from tests.test_session import TURN_S, swings_and_stances
from tests.timed_protocols import PLATEAU_MA, timed_gait

ROOT = Path(__file__).resolve().parents[1]
GAIT = ROOT / "protocols" / "library" / "peroneal_gait_gyro.toml"
WALK = ROOT / "simulator" / "data" / "walk1_2x20m_foot_imu.csv"
IMU_RATE_HZ = 100.0
RESET_WAIT_S = 20.0
"""Generous: other test runs share the two cores."""
PLATEAU_WAIT_S = 10.0
"""More than three 3 s cycles of the timed steps: a burst reaches its plateau in this."""
WATCHDOG_S = 1.0
"""fes-sim's default; the driver's keep-alive (0.5 s) is what holds it off."""
SIM_ARGS = ("--walk", str(WALK), "--imu-rate", str(IMU_RATE_HZ), "--init-interval", "0.05",
            "--watchdog", str(WATCHDOG_S))
CALIBRATION_SWINGS = 2
"""The gyro detector calibrates itself on the first strides it sees and does not stimulate
them (README, Gait detection)."""

TIMED_STEPS = timed_gait(
    "end-to-end: timed steps with long bursts",
    "Bursts from a timer, so a test is mid-burst within a second of starting.",
    ramp_up_s=0.1,
    ramp_down_s=0.5,  # long, so a fault seen at the next command is seen mid-ramp
    sensor_frozen_s=0.2)


@pytest.fixture
def timed_steps(tmp_path: Path) -> Path:
    path = tmp_path / "timed_steps.toml"
    path.write_text(TIMED_STEPS)
    return path


def fes_run(sim: SimProcess, protocol: Path, db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "controller.cli", "run",
            "--stimulator", f"serial://{sim.stimulator}", "--imu", f"serial://{sim.imu}",
            "--protocol", str(protocol), "--db", str(db), *extra]


def output_changes(sim: SimProcess, channel: int = 1) -> list[tuple[float, int, str]]:
    """(time, current, reason) of every change the simulated stimulator delivered."""
    return [(e["t_s"], e["current_ma"], e["reason"]) for e in sim.delivered()
            if e["channel"] == channel]


def at_plateau(sim: SimProcess) -> bool:
    return sim.output_ma(1) == PLATEAU_MA


# -- a recorded walk ----------------------------------------------------------------------

def test_walk_streamed_over_the_ptys_is_stimulated_in_swing_and_not_in_stance(
        tmp_path: Path) -> None:
    trace, db = tmp_path / "trace.jsonl", tmp_path / "record.sqlite"
    with running_simulator(tmp_path, *SIM_ARGS, "--trace", str(trace)) as sim:
        done = subprocess.run(fes_run(sim, GAIT, db, "--duration", "15"),
                              check=False, capture_output=True, text=True, timeout=60)
        changes = output_changes(sim)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "completed" in done.stdout

    # sim time <-> walk time, from the samples fes-sim wrote (sample k is walk time k/rate)
    written = [(r["t_s"], r["sample"] / IMU_RATE_HZ) for r in map(
        json.loads, trace.read_text().splitlines()) if "sample" in r]
    walk_s = [w for _, w in written]

    def sim_time(walk_t_s: float) -> float:
        return float(written[bisect.bisect_left(walk_s, walk_t_s)][0])

    def delivered_at(t_s: float) -> int:
        index = bisect.bisect_right([t for t, _, _ in changes], t_s) - 1
        return changes[index][1] if index >= 0 else 0

    first_s, last_s = read_rows(db, "SELECT min(t_s), max(t_s) FROM samples")[0]
    swings, stances = (
        [sim_time(w) for w in middles if w < min(walk_s[-1], TURN_S[0])]
        for middles in swings_and_stances(load_recording(WALK, "left").reference))
    in_session = [t for t in swings if first_s < t < last_s]
    quiet = [t for t in stances if first_s < t < last_s]
    assert len(in_session) >= 10 and len(quiet) >= 10
    assert [delivered_at(t) for t in quiet] == [0] * len(quiet)
    walking = in_session[CALIBRATION_SWINGS:]
    assert all(delivered_at(t) > 0 for t in walking), [delivered_at(t) for t in in_session]


# -- device faults, with the session in this process ----------------------------------------

@dataclass
class Rig:
    sim: SimProcess
    device_session: DeviceSession
    runner: SessionRunner
    db: Path

    def faults(self, since_s: float = float("-inf")) -> list[tuple[float, str, str]]:
        return [(t, kind, detail) for t, kind, detail in read_rows(
            self.db, "SELECT t_s, kind, detail FROM faults WHERE t_s >= ? ORDER BY t_s",
            (since_s,))]

    def reset_answers(self, since_s: float) -> list[tuple[str, str]]:
        """The resets and refusals recorded since ``since_s``."""
        rows = read_rows(self.db, "SELECT kind, detail FROM notices WHERE t_s >= ? "
                                  "ORDER BY t_s", (since_s,))
        return [(kind, detail) for kind, detail in rows if kind in ("reset", "reset_refused")]

    def press_reset(self) -> tuple[bool, str]:
        """One reset press and its answer: (accepted, the refusal's reasons)."""
        pressed_s = time.monotonic()
        self.runner.reset_faults()
        kind, detail = wait_for(lambda: self.reset_answers(pressed_s), timeout_s=RESET_WAIT_S)[0]
        return kind == "reset", detail if kind == "reset_refused" else ""

    def reset_until_accepted(self) -> list[str]:
        """Press reset once a second until one is accepted; the refusals' reasons."""
        refusals: list[str] = []
        deadline_s = time.monotonic() + RESET_WAIT_S
        while time.monotonic() < deadline_s:
            accepted, reasons = self.press_reset()
            if accepted:
                return refusals
            refusals.append(reasons)
            time.sleep(1.0)
        raise AssertionError(f"no reset accepted: {refusals}")

    def running_unfaulted(self, samples: int = 200) -> None:
        """``samples`` recorded and nothing latched: a fault nobody injected (a first sample
        late by over 100 ms on a loaded machine, say) is reset, as an operator would, since
        it is not what the test is about; a reset refused fails the test."""
        wait_for(lambda: read_rows(self.db, "SELECT COUNT(*) FROM samples")[0][0] > samples,
                 timeout_s=RESET_WAIT_S)
        if self.device_session.session.supervisor.latched:
            self.reset_until_accepted()


@pytest.fixture
def rig(tmp_path: Path, timed_steps: Path) -> Iterator[Rig]:
    """fes-sim plus a session on its ptys, running in a thread until the test ends."""
    with running_rig(tmp_path, timed_steps, SIM_ARGS) as started:
        yield started


@contextmanager
def running_rig(tmp_path: Path, timed_steps: Path, sim_args: Sequence[str]) -> Iterator[Rig]:
    """:func:`rig` with ``fes-sim`` started on ``sim_args`` (another IMU rate, a fault)."""
    db = tmp_path / "record.sqlite"
    with running_simulator(tmp_path, *sim_args) as sim:
        device_session = build_device_session(
            load_protocol(timed_steps), f"serial://{sim.stimulator}", f"serial://{sim.imu}",
            db)
        runner = device_session.runner()
        runner.start()
        try:
            yield Rig(sim, device_session, runner, db)
        finally:
            runner.stop("test")
            summary = runner.wait(timeout_s=10.0)
        assert summary is not None, "the session did not finish"


@dataclass(frozen=True)
class Injection:
    command: str
    kind: str
    detail: str
    stops: str
    """Who stops the output: "controller" (within a tick of the fault), "device" (the
    device stopped itself, before the controller heard of it), "watchdog" (the controller
    cannot reach the device, or the device reads none of its commands; its watchdog stops
    it)."""


INJECTIONS = [
    Injection("imu stall", "sensor_silent", "no sample for", "controller"),
    Injection("imu freeze", "sensor_frozen", "identical samples", "controller"),
    Injection("imu garbage 400", "sensor_error", "were not valid packets", "controller"),
    Injection("imu vanish", "sensor_error", "lost the IMU", "controller"),
    # at the plateau no update is sent: the driver's link check finds these
    Injection("stim late 0.3", "stimulator_error", "did not acknowledge link check",
              "controller"),
    # a transfer error: the device reads no command, not even the stop, so its watchdog
    Injection("stim refuse", "stimulator_error", "refused link check", "watchdog"),
    Injection("stim error electrode", "stimulator_error", "electrode error", "device"),
    Injection("stim silent", "stimulator_error", "did not acknowledge", "watchdog"),
    Injection("stim vanish", "stimulator_error", "lost the RehaStim 2", "watchdog"),
]


@pytest.mark.parametrize("injection", INJECTIONS, ids=lambda i: i.command)
def test_device_fault_stops_the_output_and_the_record_says_why(rig: Rig,
                                                               injection: Injection) -> None:
    rig.running_unfaulted()
    wait_for(lambda: at_plateau(rig.sim), timeout_s=PLATEAU_WAIT_S)
    injected_s = time.monotonic()
    rig.sim.command(injection.command)
    fault_s, kind, detail = wait_for(lambda: rig.faults(injected_s), timeout_s=3.0)[0]
    assert (kind, injection.detail in detail) == (injection.kind, True), detail
    assert fault_s >= injected_s

    def off() -> list[tuple[float, int, str]]:
        changes = output_changes(rig.sim)
        return changes if changes[-1][1] == 0 else []

    changes = wait_for(off, timeout_s=WATCHDOG_S + 1.0)
    off_s, _, reason = changes[-1]
    on_until_s = changes[-2][0]
    if injection.stops == "controller":
        assert on_until_s < fault_s <= off_s <= fault_s + TICK_S, (fault_s, off_s)
        assert reason == "stop command"
    elif injection.stops == "device":
        assert injected_s <= off_s <= fault_s + TICK_S
        assert reason == "electrode error"
    else:
        assert off_s <= injected_s + WATCHDOG_S + TICK_S
        assert reason == "device watchdog: controller silent"
    assert rig.device_session.session.supervisor.output_ma(1) == 0.0


# -- a controller process killed mid-burst --------------------------------------------------

def test_sigkill_mid_burst_leaves_the_stimulator_off_and_the_record_intact(
        tmp_path: Path, timed_steps: Path) -> None:
    db = tmp_path / "record.sqlite"
    with running_simulator(tmp_path, *SIM_ARGS) as sim:
        controller = subprocess.Popen(fes_run(sim, timed_steps, db), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: at_plateau(sim), timeout_s=10.0)
            time.sleep(0.6)  # let the record's writer commit rows from within the burst
            assert at_plateau(sim), "still mid-burst"
            controller.kill()
            killed_s = time.monotonic()
            controller.wait(timeout=5.0)
        finally:
            if controller.poll() is None:
                controller.kill()
                controller.wait()
        changes = wait_for(lambda: [c for c in output_changes(sim) if c[1] == 0],
                           timeout_s=WATCHDOG_S + 1.0)
    off_s, _, reason = changes[-1]
    assert reason == "device watchdog: controller silent"
    assert off_s <= killed_s + WATCHDOG_S + TICK_S
    assert read_rows(db, "PRAGMA integrity_check") == [("ok",)]
    newest_s = read_rows(db, "SELECT max(t_s) FROM samples")[0][0]
    assert killed_s - 0.5 <= newest_s <= killed_s
    assert read_rows(db, "SELECT status FROM sessions") == [("running",)]
    assert read_rows(db, "SELECT count(*) FROM commands WHERE amplitude_ma > 0")[0][0] > 0


# -- fes run on other URLs ---------------------------------------------------------------------

def test_serial_stimulator_with_a_replayed_walk_runs_in_real_time(tmp_path: Path,
                                                                  timed_steps: Path) -> None:
    db = tmp_path / "record.sqlite"
    with running_simulator(tmp_path, *SIM_ARGS) as sim:
        started_s = time.monotonic()
        code = main(["run", "--stimulator", f"serial://{sim.stimulator}",
                     "--imu", f"replay://{WALK}?foot=left", "--protocol", str(timed_steps),
                     "--duration", "1.5", "--db", str(db)])
        elapsed_s = time.monotonic() - started_s
        changes = output_changes(sim)
    assert code == 0
    assert elapsed_s >= 1.5, "a replay under fes run is paced to the wall clock"
    assert max(current for _, current, _ in changes) == PLATEAU_MA
    assert changes[-1][1:] == (0, "stop command"), "the session ends mid-ramp with a stop"
    first_s, last_s = read_rows(db, "SELECT min(t_s), max(t_s) FROM samples")[0]
    assert first_s == 0.0 and last_s == pytest.approx(1.5, abs=0.02), "the recording's own time"


@pytest.mark.parametrize(("stimulator", "imu", "message"), [
    ("usb://0", "sim://", "a stimulator URL is serial://PORT"),
    ("sim://", "tcp://host", "a motion sensor URL is serial://PORT"),
    ("serial:///dev/no-such-port", "sim://", "cannot open /dev/no-such-port"),
    ("sim://", "serial:///dev/no-such-port", "cannot open /dev/no-such-port"),
])
def test_a_bad_url_or_missing_device_is_refused_with_exit_code_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], stimulator: str, imu: str,
        message: str) -> None:
    assert main(["run", "--stimulator", stimulator, "--imu", imu,
                 "--db", str(tmp_path / "record.sqlite")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_port_where_no_stimulator_answers_is_refused(tmp_path: Path) -> None:
    with running_simulator(tmp_path, *SIM_ARGS) as sim:
        done = subprocess.run(
            [sys.executable, "-m", "controller.cli", "run", "--stimulator",
             f"serial://{sim.imu}", "--imu", "sim://", "--db", str(tmp_path / "r.sqlite")],
            check=False, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "no Init from a RehaStim 2" in done.stderr and "Traceback" not in done.stderr



# -- a control loop that stops ticking --------------------------------------------------------

STUCK_DETECTOR = """
import os, sys, threading, time
import controller.assembly.build as build

flag, blocked = sys.argv[1], sys.argv[2]
original = build.make_detector


class Stuck:
    '''The protocol's detector until the flag file appears; then one call never returns.'''

    def __init__(self, inner):
        self.inner = inner

    def reset(self):
        self.inner.reset()

    def drain_notes(self):
        return self.inner.drain_notes()

    def update(self, sample):
        if os.path.exists(flag):
            with open(blocked, "w") as out:
                out.write(repr(time.monotonic()))
            threading.Event().wait()
        return self.inner.update(sample)


build.make_detector = lambda *args, **kwargs: Stuck(original(*args, **kwargs))
from controller.cli import main
sys.exit(main(sys.argv[3:]))
"""
LOOP_LATE_S = 0.05
"""The protocol's loop-late limit (the supervisor's default): the watchdog's time."""


@pytest.mark.parametrize("signum", [None, signal.SIGINT, signal.SIGTERM],
                         ids=["no signal", "SIGINT", "SIGTERM"])
def test_a_stuck_control_loop_cannot_keep_the_stimulator_on(
        tmp_path: Path, timed_steps: Path, signum: signal.Signals | None) -> None:
    """A detector call that never returns, mid-burst, in ``fes run``: the output is zero at
    the simulated stimulator within the loop-late limit plus one tick, whether or not a
    signal arrives while the loop is stuck; a signal also ends the process."""
    db, flag, blocked = tmp_path / "record.sqlite", tmp_path / "block", tmp_path / "blocked"
    with running_simulator(tmp_path, *SIM_ARGS) as sim:
        command = [sys.executable, "-c", STUCK_DETECTOR, str(flag), str(blocked),
                   *fes_run(sim, timed_steps, db)[3:]]
        controller = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: at_plateau(sim), timeout_s=10.0)
            flag.touch()
            blocked_s = float(wait_for(lambda: blocked.exists() and blocked.read_text()))
            if signum is not None:
                controller.send_signal(signum)
            changes = wait_for(lambda: [c for c in output_changes(sim) if c[1] == 0
                                        and c[0] > blocked_s - TICK_S], timeout_s=2.0)
            if signum is not None:
                code = controller.wait(timeout=10.0)
                assert code == 1
                assert controller.stderr is not None
                assert "not responding" in controller.stderr.read()
            else:
                time.sleep(1.5)
                assert controller.poll() is None, "the loop is still stuck"
        finally:
            if controller.poll() is None:
                controller.kill()
            controller.wait()
        stayed_off = output_changes(sim)
    off_s, _, reason = changes[0]
    assert off_s - blocked_s <= LOOP_LATE_S + TICK_S, off_s - blocked_s
    assert reason == "stop command"
    assert all(current == 0 for t, current, _ in stayed_off if t >= off_s)


def test_a_loop_that_comes_back_after_a_stall_stays_off_until_a_reset(
        tmp_path: Path, timed_steps: Path) -> None:
    """In process: the watchdog stops output while the loop is stuck, and when the loop
    comes back the late loop is a latched fault, not a quiet restart."""
    db = tmp_path / "record.sqlite"
    release = threading.Event()
    stuck_at: list[float] = []

    class StallOnce:
        def __init__(self, inner: Any) -> None:
            self.inner, self.armed = inner, False

        def reset(self) -> None:
            self.inner.reset()

        def drain_notes(self) -> list[str]:
            return list(self.inner.drain_notes())

        def update(self, sample: Any) -> Any:
            if self.armed:
                self.armed = False
                stuck_at.append(time.monotonic())
                release.wait(timeout=10.0)
            return self.inner.update(sample)

    with running_simulator(tmp_path, *SIM_ARGS) as sim:
        device_session = build_device_session(
            load_protocol(timed_steps), f"serial://{sim.stimulator}", f"serial://{sim.imu}", db)
        control = device_session.session.control
        stall = StallOnce(control._detector)  # type: ignore[attr-defined]
        control._detector = stall  # type: ignore[attr-defined]
        runner = device_session.runner()
        runner.start()
        try:
            wait_for(lambda: at_plateau(sim), timeout_s=10.0)
            stall.armed = True
            wait_for(lambda: stuck_at)
            off = wait_for(lambda: [c for c in output_changes(sim)
                                    if c[1] == 0 and c[0] > stuck_at[0]], timeout_s=2.0)
            release.set()
            time.sleep(4.0)  # more than a whole timed step: it would have stimulated again
            faults = wait_for(lambda: read_rows(db, "SELECT kind, detail FROM faults"))
        finally:
            release.set()
            runner.stop("test")
            assert runner.wait(timeout_s=10.0) is not None
        after = [c for c in output_changes(sim) if c[0] > off[0][0]]
    assert off[0][0] - stuck_at[0] <= LOOP_LATE_S + TICK_S
    assert faults[0][0] == "loop_late" and "watchdog" in faults[0][1]
    assert all(current == 0 for _, current, _ in after), after
