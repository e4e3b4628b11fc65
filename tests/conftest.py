"""Fixtures shared by the tests of the serial drivers against ``fes-sim``.

Each test module starts ``fes-sim`` with its own options in its own ``sim`` fixture; the
IMU driver on that simulator, and how to wait out the bytes still in flight, are shared.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller.devices.witmotion_imu import WitMotionImu
from tests.sim_process import SimProcess, wait_for

DRAIN_QUIET_S = 0.1
DRAIN_WAIT_S = 2.0


@pytest.fixture
def imu(sim: SimProcess) -> Iterator[WitMotionImu]:
    driver = WitMotionImu(sim.imu)
    try:
        yield driver
    finally:
        driver.close()


def drain(imu: WitMotionImu) -> None:
    """Read until nothing more arrives for a while: after a stall is commanded, samples
    already written (in the pty, or mid-packet) still come, and must not count as
    stream after the stall."""
    wait_for(lambda: not (imu.wait_for_samples(DRAIN_QUIET_S) and imu.read()), DRAIN_WAIT_S)
