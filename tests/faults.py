"""Faults to inject into a simulated session, one way per fault kind of the DESIGN list,
and the record helper the fault tests share (gait and exercise)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from controller.assembly import SimulatedRig
from controller.record import read_rows
from controller.types import FaultKind
from simulator.inmemory import StimulatorMisbehaviour
from simulator.motion import MotionFault


def wait_for_rows(db: Path, query: str, at_least: int = 1) -> list[tuple[object, ...]]:
    """Rows the record's writer thread has committed, waiting up to 5 s for them."""
    deadline = time.monotonic() + 5.0
    while len(rows := read_rows(db, query)) < at_least:
        assert time.monotonic() < deadline, f"rows never reached the file: {query}"
        time.sleep(0.01)
    return rows



Injector = Callable[[SimulatedRig, float], None]


def motion(fault: MotionFault, duration_s: float = 0.4) -> Injector:
    def inject(rig: SimulatedRig, at_s: float) -> None:
        rig.motion.inject(fault, at_s + rig.clock.tick_s / 2, duration_s)
    return inject


def stimulator(misbehaviour: StimulatorMisbehaviour) -> Injector:
    def inject(rig: SimulatedRig, at_s: float) -> None:
        rig.stimulator.misbehaviour = misbehaviour
    return inject


def stall(rig: SimulatedRig, at_s: float) -> None:
    rig.clock.stall(0.08)


def emergency(rig: SimulatedRig, at_s: float) -> None:
    rig.session.submit(lambda now_s: rig.session.emergency_stop(now_s, "test button"))


def bad_request(rig: SimulatedRig, at_s: float) -> None:
    rig.session.supervisor.request(at_s, 1, 3.0)


def healthy_stimulator(rig: SimulatedRig) -> None:
    rig.stimulator.misbehaviour = StimulatorMisbehaviour.NONE


FAULTS: dict[FaultKind, Injector] = {
    FaultKind.SENSOR_SILENT: motion(MotionFault.SILENT),
    FaultKind.SENSOR_FROZEN: motion(MotionFault.FROZEN, 0.8),
    FaultKind.SENSOR_ERROR: motion(MotionFault.PORT_GONE, 0.05),
    FaultKind.TIME_BACKWARDS: motion(MotionFault.TIME_BACKWARDS),
    FaultKind.TIME_JUMP: motion(MotionFault.TIME_JUMP),
    FaultKind.IMPLAUSIBLE_VALUE: motion(MotionFault.IMPLAUSIBLE, 0.02),
    FaultKind.STIMULATOR_ERROR: stimulator(StimulatorMisbehaviour.ERROR_ANSWER),
    FaultKind.LOOP_LATE: stall,
    FaultKind.EMERGENCY_STOP: emergency,
    FaultKind.LIMIT_REJECTED: bad_request,
}


def assert_latched_at_zero_and_recorded(rig: SimulatedRig, kind: FaultKind,
                                        hold_s: float) -> None:
    """Step until the injected fault latches; then: it is the expected kind, the device's
    output went to zero within one tick of it, it stays zero for ``hold_s`` with the
    stimulator healthy again (no reset asked), and the record has the fault."""
    session, tick_s = rig.session, rig.clock.tick_s
    while not session.supervisor.latched:
        assert session.step(), "the session ended without the fault"
    fault = session.supervisor.faults[0]
    assert fault.kind is kind
    assert session.supervisor.output_ma(1) == 0.0
    if kind is not FaultKind.STIMULATOR_ERROR:
        off = [d.t_s for d in rig.stimulator.model.delivered if d.current_ma == 0]
        assert off and fault.t_s - tick_s <= off[-1] <= fault.t_s + tick_s
    assert rig.stimulator.model.is_delivering is False
    healthy_stimulator(rig)
    for _ in range(round(hold_s / tick_s)):
        session.step()
        assert session.supervisor.output_ma(1) == 0.0, "latched until an explicit reset"
    assert session.record is not None
    assert (kind.value,) in wait_for_rows(Path(session.record.path), "SELECT kind FROM faults")
