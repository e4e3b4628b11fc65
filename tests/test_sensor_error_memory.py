"""A sensor error stays raised for the rest of a session, and the loop meets it every
tick: raising it must not keep anything from the earlier ticks (found by
benchmarks/soak.py: after a garbage burst the controller grew ~4 MB a minute)."""

from __future__ import annotations

import os
import random

import pytest

from controller.devices.base import SensorError
from controller.devices.witmotion_imu import MAX_GARBAGE_RUN_BYTES, WitMotionImu
from tests.sim_process import wait_for


def _depth(error: BaseException) -> int:
    frames, tb = 0, error.__traceback__
    while tb is not None:
        frames, tb = frames + 1, tb.tb_next
    return frames


def test_a_sensor_error_raised_every_tick_keeps_no_earlier_tracebacks() -> None:
    master, slave = os.openpty()
    imu = WitMotionImu(os.ttyname(slave))
    try:
        os.write(master, random.Random(1).randbytes(4 * MAX_GARBAGE_RUN_BYTES))

        def failed() -> SensorError | None:
            try:
                imu.read()
            except SensorError as exc:
                return exc
            return None

        first = wait_for(failed)
        depths = []
        for _ in range(1000):
            with pytest.raises(SensorError) as raised:
                imu.read()
            assert raised.value is first, "the same error, raised again"
            depths.append(_depth(raised.value))
        assert max(depths) == depths[0] <= 5, depths[-1]
    finally:
        imu.close()
        os.close(master)
        os.close(slave)
