"""A reset never holds up the control loop: the stimulator's bring-up runs off the loop.

Against ``fes-sim`` over pseudo-terminals with the real serial drivers (the session in this
process, as in ``test_end_to_end``). A reset whose causes are gone must connect and
configure the stimulator again, which on a RehaStim 2 that does not answer takes the whole
2 s handshake; the loop meanwhile goes on ticking with output latched off, and the tick
after the bring-up ends completes the reset.

Where a test needs a bring-up to last until it has done something (a stop, an emergency
stop), the real driver's ``connect`` is held at a gate the test opens: the bring-up is then
in progress for as long as the test needs, whatever the machine's load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path

import pytest

from controller.assembly.hardware import build_device_session
from controller.cli import _status_text
from controller.devices.base import ChannelSetup
from controller.record import read_rows
from controller.safety import RESET_IN_PROGRESS
from controller.types import FaultKind, SessionStatus, StatusLine
from protocols import load_protocol
from simulator.inmemory import InMemoryStimulator, StimulatorMisbehaviour
from tests.sim_process import running_simulator, wait_for
from tests.test_end_to_end import (
    PLATEAU_WAIT_S,
    RESET_WAIT_S,
    SIM_ARGS,
    TIMED_STEPS,
    Rig,
    at_plateau,
    output_changes,
)
from tests.test_safety import TICK_S
from tests.test_safety import Rig as SupervisorRig

REFUSED_SILENT = "stimulator_error: the stimulator does not come up again: no Init from"
BRING_UP_TICKING_S = 1.0
"""Status lines during a bring-up on a silent stimulator (2 s) must span at least this
much session time: a loop blocked in the reset makes none."""


class StatusLines:
    """Every status line the runner hands out, from the loop's thread."""

    def __init__(self) -> None:
        self.lines: list[StatusLine] = []
        self._lock = threading.Lock()

    def __call__(self, line: StatusLine) -> None:
        with self._lock:
            self.lines.append(line)

    def resetting(self) -> list[StatusLine]:
        with self._lock:
            return [line for line in self.lines if line.resetting]


class Gate:
    """Holds the real driver's ``connect`` until :meth:`open`; says when one is held."""

    def __init__(self, connect: Callable[[], None]) -> None:
        self._connect = connect
        self.held = threading.Event()
        self._open = threading.Event()

    def __call__(self) -> None:
        self.held.set()
        self._open.wait(RESET_WAIT_S)
        self._connect()

    def open(self) -> None:
        self._open.set()


@pytest.fixture
def status_rig(tmp_path: Path) -> Iterator[tuple[Rig, StatusLines]]:
    """``test_end_to_end``'s rig, with the status lines kept."""
    protocol, db = tmp_path / "timed_steps.toml", tmp_path / "record.sqlite"
    protocol.write_text(TIMED_STEPS)
    status = StatusLines()
    with running_simulator(tmp_path, *SIM_ARGS) as sim:
        device_session = build_device_session(
            load_protocol(protocol), f"serial://{sim.stimulator}", f"serial://{sim.imu}", db)
        runner = device_session.runner(on_status=status)
        runner.start()
        try:
            yield Rig(sim, device_session, runner, db), status
        finally:
            runner.stop("test")
            assert runner.wait(timeout_s=RESET_WAIT_S) is not None, "the session did not finish"


def notices(rig: Rig, since_s: float, *kinds: str) -> list[tuple[float, str, str]]:
    """The notices of these kinds (of every kind if none is named) since ``since_s``."""
    return [(t, kind, detail) for t, kind, detail in read_rows(
        rig.db, "SELECT t_s, kind, detail FROM notices WHERE t_s >= ? ORDER BY t_s, rowid",
        (since_s,)) if kind in kinds or not kinds]


def reset_answers(rig: Rig, since_s: float, count: int = 1) -> list[tuple[float, str, str]]:
    """The resets and refusals recorded since ``since_s``, once there are ``count``."""
    found = notices(rig, since_s, "reset", "reset_refused")
    return found if len(found) >= count else []


def stimulator_fault(rig: Rig, command: str = "stim silent") -> float:
    """Inject ``command`` in a running, unfaulted session; the time it latched."""
    rig.running_unfaulted()
    injected_s = time.monotonic()
    rig.sim.command(command)
    return wait_for(lambda: [t for t, kind, _ in rig.faults(injected_s)
                             if kind == "stimulator_error"], timeout_s=RESET_WAIT_S)[0]


def held_or_answered(gate: Gate, rig: Rig, pressed_s: float) -> bool:
    """The reset pressed at ``pressed_s`` reached the gate, or was answered at once."""
    return gate.held.is_set() or bool(reset_answers(rig, pressed_s))


def bring_up_held(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> tuple[Gate, float]:
    """A stimulator fault whose cause is then cleared, and a reset whose bring-up is held
    at the gate of the real driver's ``connect``; the gate and when reset was pressed."""
    stimulator_fault(rig)
    rig.sim.command("stim ok")
    stimulator = rig.device_session.session.supervisor._stimulator
    gate = Gate(stimulator.connect)
    monkeypatch.setattr(stimulator, "connect", gate)
    deadline_s = time.monotonic() + RESET_WAIT_S
    while True:
        pressed_s = time.monotonic()
        rig.runner.reset_faults()
        wait_for(partial(held_or_answered, gate, rig, pressed_s), timeout_s=RESET_WAIT_S)
        if gate.held.is_set():
            return gate, pressed_s
        # refused at once: a fault nobody injected (a loaded machine's late sample) whose
        # cause had not passed yet; pressed again, as an operator would
        assert time.monotonic() < deadline_s, (rig.faults(), notices(rig, pressed_s))
        time.sleep(0.5)


def output_back_on(rig: Rig, since_s: float) -> None:
    """The plateau is delivered again after ``since_s``. A sensor or loop fault nobody
    injected meanwhile (a loaded machine) is reset as an operator would; a stimulator
    fault is not forgiven, since bringing the stimulator up is what is tested."""
    def back() -> bool:
        faults = rig.device_session.session.supervisor.faults
        assert all(f.kind is not FaultKind.STIMULATOR_ERROR for f in faults), faults
        if faults:
            rig.reset_until_accepted()
        return at_plateau(rig.sim) and output_changes(rig.sim)[-1][0] > since_s

    wait_for(back, timeout_s=RESET_WAIT_S + PLATEAU_WAIT_S)


def assert_stays_off(rig: Rig, since_s: float) -> None:
    """Nothing delivered since ``since_s``, over a second (the device watchdog's time)
    more: anything turned on meanwhile would be in the simulator's log."""
    time.sleep(1.0)
    assert all(current == 0 for t, current, _ in output_changes(rig.sim) if t >= since_s)
    assert rig.sim.output_ma(1) == 0


def test_a_reset_on_a_silent_stimulator_keeps_the_loop_ticking_and_is_refused(
        status_rig: tuple[Rig, StatusLines]) -> None:
    rig, status = status_rig
    stimulator_fault(rig)
    pressed_s = time.monotonic()
    rig.runner.reset_faults()
    rig.runner.reset_faults()  # a second press while the first brings the stimulator up
    answers = wait_for(lambda: reset_answers(rig, pressed_s, count=2), timeout_s=RESET_WAIT_S)
    during = status.resetting()

    assert [kind for _, kind, _ in notices(rig, pressed_s, "reset_bring_up")] == \
        ["reset_bring_up"]
    (_, second, why_second), (done_s, first, why_first) = answers
    assert (second, why_second) == ("reset_refused", RESET_IN_PROGRESS)
    assert first == "reset_refused" and why_first.startswith(REFUSED_SILENT), why_first
    assert done_s - pressed_s >= 1.5, "the 2 s handshake was waited for"
    # the loop went on ticking through the bring-up, with the fault shown and output off
    assert during[-1].t_s - during[0].t_s >= BRING_UP_TICKING_S, [s.t_s for s in during]
    assert all(line.latched and line.output_ma == {1: 0.0} for line in during)
    assert "reset in progress" in _status_text(during[0])
    supervisor = rig.device_session.session.supervisor
    assert supervisor.latched and not supervisor.resetting
    assert rig.sim.output_ma(1) == 0


def test_a_reset_that_brings_the_stimulator_up_turns_output_back_on(
        status_rig: tuple[Rig, StatusLines]) -> None:
    rig, _ = status_rig
    stimulator_fault(rig)
    rig.sim.command("stim ok")
    pressed_s = time.monotonic()
    rig.reset_until_accepted()
    assert notices(rig, pressed_s, "reset_bring_up"), "the stimulator was brought up again"
    output_back_on(rig, notices(rig, pressed_s, "reset")[0][0])


def test_a_stop_during_the_bring_up_ends_the_session_with_output_off(
        status_rig: tuple[Rig, StatusLines], monkeypatch: pytest.MonkeyPatch) -> None:
    """The bring-up succeeds after the stop: the session still ends, and nothing is
    turned on again."""
    rig, _ = status_rig
    gate, pressed_s = bring_up_held(rig, monkeypatch)
    rig.runner.stop("test")
    session = rig.device_session.session
    wait_for(lambda: session.status is not SessionStatus.RUNNING, timeout_s=RESET_WAIT_S)
    stopped_s = time.monotonic()
    gate.open()
    summary = rig.runner.wait(timeout_s=RESET_WAIT_S)

    assert summary is not None and summary.status == "stopped"
    kinds = [kind for _, kind, _ in notices(rig, pressed_s, "reset_bring_up", "reset",
                                            "reset_refused", "stop", "reset_abandoned")]
    assert kinds == ["reset_bring_up", "stop", "reset_abandoned"], kinds
    assert_stays_off(rig, stopped_s)


def test_an_emergency_stop_during_the_bring_up_makes_the_reset_refuse_naming_it(
        status_rig: tuple[Rig, StatusLines], monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault latched while the stimulator comes up again refuses the reset it belongs
    to, though the bring-up itself succeeds; the next reset is accepted."""
    rig, _ = status_rig
    gate, pressed_s = bring_up_held(rig, monkeypatch)
    rig.runner.emergency_stop("test button", end_session=False)
    wait_for(lambda: [kind for _, kind, _ in rig.faults(pressed_s) if kind == "emergency_stop"],
             timeout_s=RESET_WAIT_S)
    gate.open()
    answer = wait_for(lambda: reset_answers(rig, pressed_s), timeout_s=RESET_WAIT_S)[0]
    refused_s = time.monotonic()

    latched_meanwhile = "emergency_stop latched while the stimulator was being brought up again"
    assert answer[1:] == ("reset_refused", latched_meanwhile)
    assert rig.device_session.session.supervisor.latched
    assert_stays_off(rig, refused_s)
    rig.reset_until_accepted()
    output_back_on(rig, refused_s)


class WatchedStimulator:
    """The twin, with a note of every call that reaches it and ``connect`` held at a gate:
    a plain Python wrapper, since the twin itself may be compiled (no patching there)."""

    def __init__(self, twin: InMemoryStimulator) -> None:
        self.twin = twin
        self.calls: list[str] = []
        self.gate = Gate(twin.connect)

    @property
    def amplitude_step_ma(self) -> float:
        return self.twin.amplitude_step_ma

    def connect(self) -> None:
        self.gate()

    def configure(self, channels: Sequence[ChannelSetup], frequency_hz: float) -> None:
        self.twin.configure(channels, frequency_hz)

    def update(self, amplitudes_ma: Mapping[int, float]) -> None:
        self.calls.append("update")
        self.twin.update(amplitudes_ma)

    def check(self) -> None:
        self.calls.append("check")
        self.twin.check()

    def stop(self) -> None:
        self.calls.append("stop")
        self.twin.stop()

    def send_stop(self) -> None:
        self.calls.append("send_stop")
        self.twin.send_stop()

    def emergency_stop(self) -> None:
        self.calls.append("emergency_stop")
        self.twin.emergency_stop()

    def close(self) -> None:
        self.twin.close()


def test_nothing_but_the_bring_up_touches_the_stimulator_while_it_runs() -> None:
    """The supervisor and the in-memory twin on a hand-driven clock, the bring-up off the
    loop and held at a gate: the ticks meanwhile neither check, update nor stop the
    stimulator (its stop is the bring-up's to follow), an emergency stop from another
    thread still reaches it at once, and a fault latched meanwhile refuses the reset."""
    rig = SupervisorRig()
    supervisor, twin = rig.supervisor, rig.twin
    supervisor.bring_up_off_loop()
    rig.run(0.2, intensity=1.0)
    twin.misbehaviour = StimulatorMisbehaviour.ERROR_ANSWER
    rig.run(0.02, intensity=1.0)
    twin.misbehaviour = StimulatorMisbehaviour.NONE
    assert [f.kind for f in supervisor.faults] == [FaultKind.STIMULATOR_ERROR]
    watched = WatchedStimulator(twin)
    supervisor._stimulator = watched  # the same twin, its calls now seen

    assert supervisor.reset(rig.now) == [RESET_IN_PROGRESS]
    assert watched.gate.held.wait(RESET_WAIT_S)
    for _ in range(30):  # no samples: sensor_silent latches meanwhile
        rig.now = round(rig.now + TICK_S, 9)
        supervisor.request(rig.now, 1, 1.0)
        rig.tick()
    supervisor.halt(FaultKind.EMERGENCY_STOP, "a button, from another thread")
    assert watched.calls == ["emergency_stop"]
    assert supervisor.resetting and rig.device_ma() == 0

    def completed() -> bool:
        rig.tick()
        return not supervisor.resetting

    watched.gate.open()
    wait_for(completed, timeout_s=RESET_WAIT_S)
    _, kind, detail = rig.log.notices[-1]
    kinds = "sensor_silent, emergency_stop"
    assert (kind, detail) == ("reset_refused",
                              f"{kinds} latched while the stimulator was being brought up again")
    assert watched.calls[1] == "send_stop", "the held-back stop, sent once the bring-up ended"
    assert "update" not in watched.calls
    assert supervisor.latched and rig.device_ma() == 0


class ConfigureHeld(WatchedStimulator):
    """Held in ``configure``: after an emergency stop the link stays up, so a reset's
    bring-up only configures."""

    def __init__(self, twin: InMemoryStimulator) -> None:
        super().__init__(twin)
        self.gate = Gate(lambda: None)

    def configure(self, channels: Sequence[ChannelSetup], frequency_hz: float) -> None:
        self.gate()
        self.twin.configure(channels, frequency_hz)


def test_a_second_emergency_stop_during_the_bring_up_of_its_reset_refuses_it() -> None:
    """An emergency stop is latched; the reset's bring-up is held at a gate; the button is
    pressed again from another thread. Its kind is latched already, but its stop reached
    the device, and the bring-up's configure would lift it: the reset must refuse."""
    rig = SupervisorRig()
    supervisor, twin = rig.supervisor, rig.twin
    supervisor.bring_up_off_loop()
    rig.run(0.2, intensity=1.0)
    supervisor.halt(FaultKind.EMERGENCY_STOP, "the first press")
    rig.tick()
    assert [f.kind for f in supervisor.faults] == [FaultKind.EMERGENCY_STOP]
    watched = ConfigureHeld(twin)
    supervisor._stimulator = watched
    assert supervisor.reset(rig.now) == [RESET_IN_PROGRESS]
    assert watched.gate.held.wait(RESET_WAIT_S)
    supervisor.halt(FaultKind.EMERGENCY_STOP, "the second press")

    def completed() -> bool:
        rig.run(TICK_S)
        return not supervisor.resetting

    watched.gate.open()
    wait_for(completed, timeout_s=RESET_WAIT_S)
    _, kind, detail = rig.log.notices[-1]
    assert (kind, detail) == (
        "reset_refused", "emergency_stop latched while the stimulator was being brought up again")
    rig.run(0.5, intensity=1.0)
    assert supervisor.latched and rig.device_ma() == 0
