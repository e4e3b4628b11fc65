"""A damaged or stalled IMU stream is refused a reset while the damage goes on, and is
cleared once the stream is whole again: the real serial drivers against ``fes-sim`` over
pseudo-terminals.

Waits are event-driven (the record is polled) with generous time-outs: other test runs
share the two cores.
"""

from __future__ import annotations

import time

from controller.record import read_rows
from controller.types import FaultKind
from tests.sim_process import wait_for
from tests.test_end_to_end import (  # noqa: F401  (rig and timed_steps are fixtures)
    Rig,
    rig,
    timed_steps,
)

WAIT_S = 20.0
"""Generous: other test runs share the two cores."""
STALLS = 4
STALL_S = 2.5
"""Longer than a rate window: the stall spans one."""
CORRUPT_RESETS = 6


def _answers(setup: Rig, since_s: float) -> list[tuple[str, str]]:
    """The resets and refusals recorded since ``since_s``."""
    rows = read_rows(setup.db, "SELECT kind, detail FROM notices WHERE t_s >= ? ORDER BY t_s",
                     (since_s,))
    return [(kind, detail) for kind, detail in rows if kind in ("reset", "reset_refused")]


def _press_reset(setup: Rig) -> tuple[bool, str]:
    """One reset press and its answer: (accepted, the refusal's reasons)."""
    pressed_s = time.monotonic()
    setup.runner.reset_faults()
    kind, detail = wait_for(lambda: _answers(setup, pressed_s), timeout_s=WAIT_S)[0]
    return kind == "reset", detail if kind == "reset_refused" else ""


def _reset_until_accepted(setup: Rig) -> list[str]:
    """Press reset once a second until one is accepted; the refusals' reasons."""
    refusals: list[str] = []
    deadline_s = time.monotonic() + WAIT_S
    while time.monotonic() < deadline_s:
        accepted, reasons = _press_reset(setup)
        if accepted:
            return refusals
        refusals.append(reasons)
        time.sleep(1.0)
    raise AssertionError(f"no reset accepted: {refusals}")


def _running_unfaulted(setup: Rig, samples: int = 200) -> None:
    """``samples`` recorded and nothing latched (a late first sample on a loaded machine
    is reset: it is not what is under test)."""
    wait_for(lambda: read_rows(setup.db, "SELECT COUNT(*) FROM samples")[0][0] > samples,
             timeout_s=WAIT_S)
    if setup.device_session.session.supervisor.latched:
        _reset_until_accepted(setup)


def test_after_a_stall_the_reset_is_refused_while_it_lasts_and_accepted_once_cleared(
        rig: Rig) -> None:  # noqa: F811
    supervisor = rig.device_session.session.supervisor
    _running_unfaulted(rig, samples=30)  # the first stall within the first seconds, whose
    for _ in range(STALLS):              # rate is judged once, for good
        rig.sim.command("imu stall")
        wait_for(lambda: supervisor.latched, timeout_s=WAIT_S)
        assert {f.kind for f in supervisor.faults} == {FaultKind.SENSOR_SILENT}
        accepted, reasons = _press_reset(rig)
        assert not accepted and "no fresh sample" in reasons
        time.sleep(STALL_S)
        rig.sim.command("imu ok")
        refusals = _reset_until_accepted(rig)
        assert all(r.startswith("sensor_silent") for r in refusals), refusals
        assert not supervisor.latched


def test_a_stream_still_30_percent_corrupted_is_refused_every_reset(
        rig: Rig) -> None:  # noqa: F811
    supervisor = rig.device_session.session.supervisor
    _running_unfaulted(rig)
    rig.sim.command("imu corrupt 0.3")
    wait_for(lambda: FaultKind.SENSOR_DEGRADED in {f.kind for f in supervisor.faults},
             timeout_s=WAIT_S)
    for _ in range(CORRUPT_RESETS):
        time.sleep(1.0)  # a new rate window each press
        accepted, reasons = _press_reset(rig)
        assert not accepted and "sensor_degraded" in reasons, reasons
    recovered_s = time.monotonic()
    rig.sim.command("imu ok")
    _reset_until_accepted(rig)
    print(f"cleared {time.monotonic() - recovered_s:.1f} s after the stream recovered")
    assert time.monotonic() - recovered_s < WAIT_S
