"""A damaged or stalled IMU stream is refused a reset while the damage goes on, and is
cleared once the stream is whole again: the real serial drivers against ``fes-sim`` over
pseudo-terminals.

Waits are event-driven (the record is polled) with generous time-outs: other test runs
share the two cores.
"""

from __future__ import annotations

import time
from pathlib import Path

from controller.assembly.hardware import DeviceOpenError
from controller.types import FaultKind
from tests.sim_process import wait_for
from tests.test_end_to_end import (  # noqa: F401  (rig and timed_steps are fixtures)
    RESET_WAIT_S,
    SIM_ARGS,
    Rig,
    rig,
    running_rig,
    timed_steps,
)

STALLS = 4
STALL_S = 2.5
"""Longer than a rate window: the stall spans one."""
CORRUPT_RESETS = 6
SLOW_IMU_HZ = 50.0
"""Gait's minimum rate: a sensor set to it is as slow as a gait session allows."""


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
    _refused_while_corrupted_then_cleared(rig)


def test_a_50_hz_imu_is_refused_while_corrupted_and_cleared_once_whole_again(
        tmp_path: Path, timed_steps: Path) -> None:  # noqa: F811
    """Gait needs 50 usable samples a second: a 50 Hz sensor can never show 1.2 times
    that, so it is cleared against the rate it was measured sending before the session."""
    with running_rig(tmp_path, timed_steps, _with_imu_rate(SLOW_IMU_HZ)) as slow:
        _refused_while_corrupted_then_cleared(slow)


def test_a_stream_corrupted_from_the_start_is_never_cleared(
        tmp_path: Path, timed_steps: Path) -> None:  # noqa: F811
    """Its usable rate (about 49 a second) is all the session ever sees; the rate the
    sensor sends counts the damaged packets too, so clearing still needs the margin."""
    try:
        with running_rig(tmp_path, timed_steps,
                         (*SIM_ARGS, "--fault", "imu corrupt 0.3")) as damaged:
            _latched_degraded_and_refused(damaged)
    except DeviceOpenError as exc:  # measured below the minimum before the session
        print(f"refused before the session: {exc}")
        assert "usable samples/s" in str(exc), exc


def _with_imu_rate(rate_hz: float) -> tuple[str, ...]:
    at = SIM_ARGS.index("--imu-rate") + 1
    return (*SIM_ARGS[:at], str(rate_hz), *SIM_ARGS[at + 1:])


def _latched_degraded_and_refused(rig: Rig) -> None:  # noqa: F811
    supervisor = rig.device_session.session.supervisor
    wait_for(lambda: FaultKind.SENSOR_DEGRADED in {f.kind for f in supervisor.faults},
             timeout_s=RESET_WAIT_S)
    for _ in range(CORRUPT_RESETS):
        time.sleep(1.0)  # a new rate window each press
        accepted, reasons = rig.press_reset()
        assert not accepted and "sensor_degraded" in reasons, reasons


def _refused_while_corrupted_then_cleared(rig: Rig) -> None:  # noqa: F811
    rig.running_unfaulted()
    rig.sim.command("imu corrupt 0.3")
    _latched_degraded_and_refused(rig)
    recovered_s = time.monotonic()
    rig.sim.command("imu ok")
    rig.reset_until_accepted()
    print(f"cleared {time.monotonic() - recovered_s:.1f} s after the stream recovered")
    assert time.monotonic() - recovered_s < RESET_WAIT_S
    assert not rig.device_session.session.supervisor.latched
