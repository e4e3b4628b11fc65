"""The session in its own process: output stops when either side goes away or hangs, a
session that cannot be built says why, and what the ticks emit reaches the parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from controller.observe import SessionObserver
from controller.record import read_rows
from controller.session_process import (
    STOP_ANSWER_S,
    SessionProcess,
    SessionSpec,
    SessionStartError,
)
from protocols import ExerciseProtocol, load_protocol
from protocols.loader import library_protocols
from tests.sim_process import running_simulator, wait_for
from tests.test_end_to_end import SIM_ARGS, TIMED_STEPS, at_plateau

WAIT_S = 20.0


def cued_exercise() -> ExerciseProtocol:
    """Stimulates within 2 s of the start whatever the limb does."""
    protocol = load_protocol(next(p for p in library_protocols()
                                  if p.stem == "exercise_assisted_toe_raises"))
    assert isinstance(protocol, ExerciseProtocol)
    return protocol


def wait_until(condition: object, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_what_the_ticks_emit_reaches_the_parents_observers(tmp_path: Path) -> None:
    class Probe(SessionObserver):
        def __init__(self) -> None:
            self.hooks: set[str] = set()

        def on_sample(self, sample: object) -> None:
            self.hooks.add("sample")

        def on_cue(self, cue: object) -> None:
            self.hooks.add("cue")

        def on_command(self, t_s: float, amplitudes_ma: object) -> None:
            self.hooks.add("command")

    probe = Probe()
    lines: list[object] = []
    session = SessionProcess(SessionSpec(cued_exercise(), tmp_path / "r.sqlite",
                                         realtime=False, time_ticks=True),
                             observers=[probe], on_status=lines.append)
    session.start()
    summary = session.wait(WAIT_S * 3)
    assert summary is not None and summary.status == "completed"
    assert probe.hooks == {"sample", "cue", "command"}
    assert lines, "status lines arrived"
    assert not session.tick_late_ms, "tick timing is only for paced sessions"


def test_output_stops_and_the_session_is_recorded_when_the_parent_dies(
        tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    parent = textwrap.dedent(f"""
        import os, signal, time
        from pathlib import Path
        from controller.session_process import SessionProcess, SessionSpec
        from tests.test_session_process import cued_exercise
        session = SessionProcess(SessionSpec(cued_exercise(), Path({str(db)!r})))
        session.start()
        while not any(session.last_output_ma.values()):
            time.sleep(0.01)
        print(session.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", parent], check=False, capture_output=True, text=True,
                          timeout=WAIT_S * 3, cwd=Path(__file__).parents[1])
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert int(done.stdout.split()[0]) > 0, "the session delivered before the parent died"
    wait_until(lambda: read_rows(db, "SELECT status FROM sessions") == [("emergency_stop",)])
    (fault_t_s, detail), = read_rows(db, "SELECT t_s, detail FROM faults")
    assert "went away" in detail
    last = read_rows(db, "SELECT t_s, amplitude_ma FROM commands ORDER BY t_s DESC LIMIT 1")
    assert last == [(fault_t_s, 0.0)], "output went to zero when the fault latched"


def test_a_hung_session_process_is_killed_when_it_does_not_confirm_a_stop(
        tmp_path: Path) -> None:
    session = SessionProcess(SessionSpec(cued_exercise(), tmp_path / "r.sqlite"))
    session.start()
    wait_until(lambda: any(session.last_output_ma.values()))
    os.kill(session.pid, signal.SIGSTOP)
    wait_until(lambda: "T (stopped)" in Path(f"/proc/{session.pid}/status").read_text())
    asked_s = time.monotonic()
    assert session.emergency_stop("STOP button") is None
    assert time.monotonic() - asked_s < STOP_ANSWER_S + 1.0
    assert session.killed_for is not None and "did not confirm" in session.killed_for
    wait_until(lambda: session.ended)
    assert session.summary is None and session.lost
    assert not _alive(session.pid)


def test_a_session_that_cannot_be_built_says_why(tmp_path: Path) -> None:
    session = SessionProcess(SessionSpec(cued_exercise(), tmp_path / "r.sqlite",
                                         stimulator_url="serial:///dev/no-such-port",
                                         imu_url="serial:///dev/no-such-imu"))
    with pytest.raises(SessionStartError, match="no-such"):
        session.start()
    assert session.ended and not session.running


def _alive(pid: int) -> bool:
    """Whether ``pid`` still exists (the session process reaps its child when it ends)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_session_on_the_serial_devices_stops_at_the_simulated_stimulator(
        tmp_path: Path) -> None:
    """The GUI's path to real devices: the session process opens both serial drivers on
    ``fes-sim``'s pseudo-terminals; a stop reaches the simulated device's output."""
    protocol = tmp_path / "timed_steps.toml"
    protocol.write_text(TIMED_STEPS)
    db = tmp_path / "r.sqlite"
    with running_simulator(tmp_path, *SIM_ARGS) as sim:
        session = SessionProcess(SessionSpec(
            load_protocol(protocol), db, stimulator_url=f"serial://{sim.stimulator}",
            imu_url=f"serial://{sim.imu}"))
        session.start()
        wait_for(lambda: at_plateau(sim), timeout_s=10.0)
        answer = session.emergency_stop("STOP button")
        assert answer is not None and answer.delivering is None, "a real device: unknown"
        wait_for(lambda: sim.output_ma(1) == 0, timeout_s=1.0)
        summary = session.wait(WAIT_S)
    assert summary is not None and summary.status == "emergency_stop"
    assert read_rows(db, "SELECT sensor FROM sessions")[0][0].startswith("serial://")
