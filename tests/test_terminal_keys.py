"""The terminal front end on a real pseudo-terminal, driving a real session."""

from __future__ import annotations

import os
from pathlib import Path

from controller.assembly import build_simulated_session
from controller.devices.recording import load_recording
from controller.record import read_rows
from controller.terminal_keys import TerminalKeys
from protocols import load_protocol
from protocols.loader import LIBRARY
from simulator import BUNDLED_WALK
from tests.sim_process import wait_for

GAIT = LIBRARY / "peroneal_gait_gyro.toml"


def test_keys_written_together_are_all_delivered_in_order(tmp_path: Path) -> None:
    """Two nudges and a stop in one write: a text stream's read(1) used to keep all but
    the first key in its own buffer, out of select()'s sight, so the stop never came."""
    db = tmp_path / "record.sqlite"
    rig = build_simulated_session(load_protocol(GAIT), load_recording(BUNDLED_WALK, "left")
                                  .samples(), db, source="test", realtime=True)
    supervisor = rig.session.supervisor
    runner = rig.runner()
    controller_fd, terminal_fd = os.openpty()
    try:
        with open(terminal_fd, encoding="utf-8", closefd=False) as terminal:
            runner.start()
            try:
                with TerminalKeys(runner, terminal) as keys:
                    assert keys.active, "a pseudo-terminal is a terminal"
                    wait_for(lambda: supervisor.output_ma(1) > 0, 20.0)
                    setting_ma = supervisor.setting_ma(1)
                    os.write(controller_fd, b"++ ")
                    summary = runner.wait(20.0)
            finally:
                runner.stop("test")
                runner.wait(10.0)
    finally:
        os.close(controller_fd)
        os.close(terminal_fd)
    assert summary is not None, "the stop key, third in the write, was never read"
    assert summary.status == "stopped"
    notices = read_rows(db, "SELECT kind, detail FROM notices WHERE kind IN ('nudge', 'stop') "
                            "ORDER BY rowid")
    assert notices == [("nudge", f"channel 1: {setting_ma + 1:g} mA"),
                       ("nudge", f"channel 1: {setting_ma + 2:g} mA"),
                       ("stop", "session ended by keyboard")]
