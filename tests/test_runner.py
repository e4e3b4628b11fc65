"""SessionRunner driven from another thread, as a GUI or a terminal drives it."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.assembly import build_simulated_session
from controller.devices.recording import load_recording
from controller.record import read_rows
from controller.safety import PROCESS_STALL_S
from protocols import load_protocol
from protocols.loader import LIBRARY
from simulator import BUNDLED_WALK
from simulator.motion import MotionFault
from tests.sim_process import wait_for

GAIT = LIBRARY / "peroneal_gait_gyro.toml"


def test_commands_from_another_thread_are_applied_at_the_next_tick(tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    rig = build_simulated_session(load_protocol(GAIT), load_recording(BUNDLED_WALK, "left")
                                  .samples(), db, source="test", realtime=True)
    session, tick_s = rig.session, rig.clock.tick_s
    supervisor = session.supervisor
    runner = rig.runner()
    runner.start()

    def rows_after(table: str, kind: str, t_s: float) -> list[tuple[float, str]]:
        return read_rows(db, f"SELECT t_s, detail FROM {table} WHERE kind = ? AND t_s >= ?",
                         (kind, t_s))

    def applied_within_a_tick(table: str, kind: str, submitted_s: float) -> str:
        t_s, detail = wait_for(lambda: rows_after(table, kind, submitted_s), 5.0)[0]
        assert t_s <= submitted_s + tick_s + 1e-9, (kind, t_s - submitted_s)
        return detail

    try:
        wait_for(lambda: supervisor.output_ma(1) > 0, 20.0)
        submitted_s = session.now_s
        runner.nudge(1, +2)
        assert applied_within_a_tick("notices", "nudge", submitted_s) == "channel 1: 26 mA"
        assert supervisor.setting_ma(1) == 26.0

        submitted_s = session.now_s
        runner.pause()
        applied_within_a_tick("notices", "pause", submitted_s)
        wait_for(lambda: not rig.stimulator.model.is_delivering, 2.0)
        submitted_s = session.now_s
        runner.resume()
        applied_within_a_tick("notices", "resume", submitted_s)

        rig.motion.inject(MotionFault.SILENT, session.now_s + 0.05, 0.3)
        wait_for(lambda: supervisor.latched, 2.0)
        assert not rig.stimulator.model.is_delivering
        wait_for(lambda: session.now_s > supervisor.faults[0].t_s + 0.4, 2.0)
        submitted_s = session.now_s
        runner.reset_faults()
        applied_within_a_tick("notices", "reset", submitted_s)
        assert not supervisor.latched

        wait_for(lambda: rig.stimulator.model.is_delivering, 10.0)
        submitted_s = session.now_s
        runner.emergency_stop("test button", end_session=False)
        assert not rig.stimulator.model.is_delivering, "halted before the call returned"
        assert applied_within_a_tick("faults", "emergency_stop", submitted_s) == "test button"
        assert runner.running, "an emergency stop without end_session keeps recording"
    finally:
        runner.stop("test")
        summary = runner.wait(10.0)
    assert summary is not None and summary.status == "stopped"
    assert [f["kind"] for f in summary.faults] == ["sensor_silent", "emergency_stop"]


@pytest.mark.parametrize("stopped_s", [0.08, 0.6])
def test_a_stopped_process_latches_once_it_stood_still_past_the_stall_limit(
        tmp_path: Path, stopped_s: float) -> None:
    """``fes simulate --realtime`` stopped (SIGSTOP) and continued: a short stop is a
    scheduler's delay and the session goes on; a long one latches loop_late, and no output
    comes after it (no reset is given)."""
    db = tmp_path / "record.sqlite"
    fes = subprocess.Popen([sys.executable, "-m", "controller.cli", "simulate", "--realtime",
                            "--duration", "8", "--db", str(db)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def delivering() -> bool:
        try:
            return bool(read_rows(db, "SELECT t_s FROM commands WHERE amplitude_ma > 0"))
        except sqlite3.OperationalError:  # the record is not made yet
            return False

    try:
        wait_for(delivering, 30.0)
        fes.send_signal(signal.SIGSTOP)
        time.sleep(stopped_s)
        fes.send_signal(signal.SIGCONT)
        code = fes.wait(timeout=60.0)
    finally:
        if fes.poll() is None:
            fes.kill()
            fes.wait()
    faults = read_rows(db, "SELECT t_s, kind, detail FROM faults")
    assert fes.stderr is not None
    if stopped_s < PROCESS_STALL_S:
        assert (code, faults) == (0, []), fes.stderr.read()
        return
    assert code == 1
    assert [kind for _, kind, _ in faults] == ["loop_late"], faults
    after = read_rows(db, "SELECT amplitude_ma FROM commands WHERE t_s > ?", (faults[0][0],))
    assert all(amplitude == 0 for (amplitude,) in after)
