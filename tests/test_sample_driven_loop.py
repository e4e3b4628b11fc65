"""The sample-driven control loop on a serial IMU, against ``fes-sim`` on real pseudo-terminals.

A session on a serial IMU ticks when the driver has new samples and at the latest one
tick after the previous tick (:func:`controller.run.sample_driven_clock`). These tests
check the three parts of that promise by counts and order, never by durations, so a busy
machine slows them down without failing them: the driver's wake-up fires when samples
arrive (and only then), a loop on it ticks per sample rather than on its grid, and a
silent sensor still ends in ``sensor_silent`` at the first tick past the limit because
the wake-up times out and the ticks keep coming.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.assembly.build import build_session
from controller.assembly.hardware import TICK_S, build_device_session, sample_driven_clock
from controller.clock import Clock, MonotonicClock
from controller.devices.base import SensorError
from controller.devices.witmotion_imu import WitMotionImu
from controller.observe import SessionObserver
from controller.runner import SessionRunner
from controller.types import Fault, FaultKind, Sample
from protocols import load_protocol
from simulator.inmemory import InMemoryStimulator
from tests.conftest import drain
from tests.sim_process import SimProcess, running_simulator

ROOT = Path(__file__).resolve().parents[1]
GAIT = ROOT / "protocols" / "library" / "peroneal_gait_gyro.toml"
WALK = ROOT / "simulator" / "data" / "walk1_2x20m_foot_imu.csv"
WAIT_S = 2.0
"""Longest wait for something that should come within milliseconds."""
WIDE_TICK_S = 0.05
"""A fallback five sample periods long at 100 Hz: the grid would read five per tick."""


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    with running_simulator(tmp_path, "--walk", str(WALK), "--init-interval", "0.05") as process:
        yield process


def test_the_wake_up_fires_on_new_samples_and_read_clears_it(imu: WitMotionImu,
                                                             sim: SimProcess) -> None:
    assert imu.wait_for_samples(WAIT_S)
    assert imu.wait_for_samples(0.0), "waiting must not consume the wake-up; only read does"
    assert imu.read()
    assert imu.wait_for_samples(WAIT_S), "a sample after a read wakes the loop again"
    assert imu.read()

    sim.command("imu stall")
    drain(imu)
    assert not imu.wait_for_samples(0.05)
    assert imu.read() == []

    sim.command("imu ok")
    assert imu.wait_for_samples(WAIT_S)
    assert imu.read()


def test_a_lost_port_wakes_the_loop_once(imu: WitMotionImu, sim: SimProcess) -> None:
    sim.command("imu stall")
    drain(imu)
    sim.command("imu vanish")
    assert imu.wait_for_samples(WAIT_S), "a waiting loop must hear of the lost port at once"
    with pytest.raises(SensorError):
        imu.read()
    assert not imu.wait_for_samples(0.05), "a raised error must not keep the loop spinning"
    with pytest.raises(SensorError):
        imu.read()


def batch_sizes(clock: Clock, imu: WitMotionImu, ticks: int) -> list[int]:
    imu.read()
    sizes = []
    for _ in range(ticks):
        clock.next_tick()
        sizes.append(len(imu.read()))
    return sizes


def test_a_loop_on_the_wake_up_ticks_per_sample_not_on_its_grid(imu: WitMotionImu) -> None:
    driven = batch_sizes(MonotonicClock(WIDE_TICK_S, wake_up=imu.wait_for_samples), imu, 60)
    grid = batch_sizes(MonotonicClock(WIDE_TICK_S), imu, 20)

    ticks_with_samples = sum(1 for size in driven if size)
    assert sum(driven) / ticks_with_samples < 2.0, driven  # nominally one sample per tick
    assert sum(grid) / len(grid) > 3.5, grid  # nominally five: the measure can tell them apart


class TickCounter(SessionObserver):
    def __init__(self) -> None:
        self.ticks = 0

    def on_tick(self, t_s: float) -> None:
        self.ticks += 1


def test_fes_run_wires_the_sample_driven_clock(tmp_path: Path) -> None:
    """At 200 Hz a 10 ms grid would tick once per two samples; the session ticks per sample."""
    counter = TickCounter()
    with running_simulator(tmp_path, "--walk", str(WALK), "--init-interval", "0.05",
                           "--imu-rate", "200") as sim:
        device_session = build_device_session(
            load_protocol(GAIT), f"serial://{sim.stimulator}", f"serial://{sim.imu}",
            tmp_path / "run.sqlite", duration_s=1.0, observers=[counter])
        summary = device_session.runner().run()
    assert summary.samples > 100
    assert counter.ticks > 0.75 * summary.samples, (counter.ticks, summary.samples)


@dataclass
class Tick:
    t_s: float
    read: int
    last_sample_s: float | None
    silent: bool


class TickProbe(SessionObserver):
    """Notes what each tick read and whether it latched silence; ends the session then."""

    def __init__(self) -> None:
        self.ticks: list[Tick] = []
        self.streaming = threading.Event()
        self.runner: SessionRunner | None = None
        self._read = 0
        self._last_sample_s: float | None = None
        self._silent = False

    def on_sample(self, sample: Sample) -> None:
        self._read += 1
        self._last_sample_s = sample.t_s

    def on_fault(self, fault: Fault) -> None:
        self._silent |= fault.kind is FaultKind.SENSOR_SILENT

    def on_tick(self, t_s: float) -> None:
        self.ticks.append(Tick(t_s, self._read, self._last_sample_s, self._silent))
        self._read = 0
        if len(self.ticks) == 50:
            self.streaming.set()
        if (self._silent or len(self.ticks) > 10_000) and self.runner is not None:
            self.runner.stop("test")


def test_silence_latches_sensor_silent_at_the_first_tick_past_the_limit(
        imu: WitMotionImu, sim: SimProcess, tmp_path: Path) -> None:
    protocol = load_protocol(GAIT)
    probe = TickProbe()
    clock = sample_driven_clock(imu)
    session = build_session(protocol, imu, InMemoryStimulator(clock.now), clock,
                            tmp_path / "silence.sqlite", sensor_name=sim.imu,
                            stimulator_name="sim://", observers=[probe])
    runner = probe.runner = SessionRunner(session)
    runner.start()
    try:
        assert probe.streaming.wait(WAIT_S * 5)
        sim.command("imu stall")
    finally:
        summary = runner.wait(30.0)
    assert summary is not None
    ticks = probe.ticks

    assert ticks[-1].silent, "the session ended without noticing the silence"
    fault_index = next(i for i, tick in enumerate(ticks) if tick.silent)
    last_read_index = max(i for i, tick in enumerate(ticks) if tick.read)
    last_sample_s = ticks[last_read_index].last_sample_s
    assert last_sample_s is not None
    limit_s = protocol.safety.sensor_silent_s
    timer_ticks = ticks[last_read_index + 1:fault_index + 1]
    # the wake-up timed out again and again: ticks kept coming with nothing to read ...
    assert len(timer_ticks) >= limit_s / TICK_S / 2, len(timer_ticks)
    # ... and the first of them past the limit latched the fault
    past_limit = next(i for i, tick in enumerate(ticks)
                      if i > last_read_index and tick.t_s - last_sample_s > limit_s)
    assert past_limit == fault_index
