"""A session's first moments on the serial drivers against ``fes-sim``: it starts on the
samples of its own time, not on the second the stimulator's handshake took.
"""

from __future__ import annotations

from pathlib import Path

from controller.assembly.hardware import build_device_session
from controller.record import read_rows
from protocols import load_protocol
from tests.sim_process import running_simulator
from tests.test_end_to_end import GAIT, WALK

STALE_S = 0.3
"""Generous: a sample this much older than the session's start came before it. The
simulated stimulator announces itself once a second (fes-sim's default), so the handshake
after the IMU's rate was measured takes up to a second, and before the fix the first
sample recorded was 0.9-1.0 s old in most sessions."""


def test_a_session_starts_on_fresh_samples_not_those_heard_during_the_handshake(
        tmp_path: Path) -> None:
    db = tmp_path / "record.sqlite"
    with running_simulator(tmp_path, "--walk", str(WALK), "--imu-rate", "100") as sim:
        device = build_device_session(load_protocol(GAIT), f"serial://{sim.stimulator}",
                                      f"serial://{sim.imu}", db, duration_s=1.0)
        device.runner().run()
    first_s, count = read_rows(db, "SELECT MIN(t_s), COUNT(*) FROM samples")[0]
    assert count > 0
    assert first_s >= device.start_s - STALE_S, first_s - device.start_s
