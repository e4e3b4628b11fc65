"""A damaged or stalled IMU stream is refused a reset while the damage goes on, and is
cleared once the stream is whole again: the real serial drivers against ``fes-sim`` over
pseudo-terminals.

Waits are event-driven (the record is polled) with generous time-outs: other test runs
share the two cores.
"""

from __future__ import annotations

import time

from controller.types import FaultKind
from tests.sim_process import wait_for
from tests.test_end_to_end import (  # noqa: F401  (rig and timed_steps are fixtures)
    RESET_WAIT_S,
    Rig,
    rig,
    timed_steps,
)

STALLS = 4
STALL_S = 2.5
"""Longer than a rate window: the stall spans one."""
CORRUPT_RESETS = 6


def test_after_a_stall_the_reset_is_refused_while_it_lasts_and_accepted_once_cleared(
        rig: Rig) -> None:  # noqa: F811
    supervisor = rig.device_session.session.supervisor
    rig.running_unfaulted(samples=30)  # the first stall within the first seconds, whose
    for _ in range(STALLS):              # rate is judged once, for good
        rig.sim.command("imu stall")
        wait_for(lambda: supervisor.latched, timeout_s=RESET_WAIT_S)
        assert {f.kind for f in supervisor.faults} == {FaultKind.SENSOR_SILENT}
        accepted, reasons = rig.press_reset()
        assert not accepted and "no fresh sample" in reasons
        time.sleep(STALL_S)
        rig.sim.command("imu ok")
        refusals = rig.reset_until_accepted()
        assert all(r.startswith("sensor_silent") for r in refusals), refusals
        assert not supervisor.latched


def test_a_stream_still_30_percent_corrupted_is_refused_every_reset(
        rig: Rig) -> None:  # noqa: F811
    supervisor = rig.device_session.session.supervisor
    rig.running_unfaulted()
    rig.sim.command("imu corrupt 0.3")
    wait_for(lambda: FaultKind.SENSOR_DEGRADED in {f.kind for f in supervisor.faults},
             timeout_s=RESET_WAIT_S)
    for _ in range(CORRUPT_RESETS):
        time.sleep(1.0)  # a new rate window each press
        accepted, reasons = rig.press_reset()
        assert not accepted and "sensor_degraded" in reasons, reasons
    recovered_s = time.monotonic()
    rig.sim.command("imu ok")
    rig.reset_until_accepted()
    print(f"cleared {time.monotonic() - recovered_s:.1f} s after the stream recovered")
    assert time.monotonic() - recovered_s < RESET_WAIT_S
