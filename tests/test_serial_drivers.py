"""The serial drivers against ``fes-sim`` on real pseudo-terminals, healthy and under faults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.devices.base import ChannelSetup, SensorError, StimulatorError
from controller.devices.rehastim2 import RehaStim2
from controller.devices.witmotion_imu import WitMotionImu
from controller.types import Sample
from tests.conftest import drain
from tests.sim_process import SimProcess, running_simulator, wait_for

CHANNEL = 2


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    with running_simulator(tmp_path, "--init-interval", "0.05", "--watchdog", "0.5") as process:
        yield process


@pytest.fixture
def stimulator(sim: SimProcess) -> Iterator[RehaStim2]:
    driver = RehaStim2(sim.stimulator, keepalive_s=0.1)
    driver.connect()
    driver.configure([ChannelSetup(CHANNEL, 250)], frequency_hz=40.0)
    try:
        yield driver
    finally:
        driver.close()


def raises_within(check: object, error: type[Exception], timeout_s: float = 2.0) -> str:
    """Call ``check`` until it raises ``error``; return the message."""
    assert callable(check)

    def raised() -> str | None:
        try:
            check()
        except error as exc:
            return str(exc) or type(exc).__name__
        return None

    message = wait_for(raised, timeout_s)
    assert message is not None  # wait_for returns only a truthy value
    return message


def collect(imu: WitMotionImu, count: int) -> list[Sample]:
    samples: list[Sample] = []

    def enough() -> bool:
        samples.extend(imu.read())
        return len(samples) >= count

    wait_for(enough)
    return samples


# -- stimulator -------------------------------------------------------------------------

def test_update_is_delivered_rounded_down_to_the_device_step(stimulator: RehaStim2,
                                                             sim: SimProcess) -> None:
    stimulator.update({CHANNEL: 21.5})
    assert wait_for(lambda: sim.output_ma(CHANNEL) == 20)
    stimulator.check()


def test_keepalive_holds_the_output_past_the_device_watchdog(stimulator: RehaStim2,
                                                             sim: SimProcess) -> None:
    stimulator.update({CHANNEL: 10})
    wait_for(lambda: sim.output_ma(CHANNEL) == 10)
    deadline = time.monotonic() + 1.0  # twice the device watchdog: keep-alives only
    while time.monotonic() < deadline:
        stimulator.check()  # the control loop's heartbeat, as the supervisor gives it
        time.sleep(0.01)
    assert sim.output_ma(CHANNEL) == 10


def test_without_the_loops_heartbeat_the_keepalive_stops_and_the_device_stops(
        stimulator: RehaStim2, sim: SimProcess) -> None:
    """A control loop stuck anywhere stops calling check(): the driver's own thread must
    not hold the output on for it."""
    stimulator.update({CHANNEL: 10})
    wait_for(lambda: sim.output_ma(CHANNEL) == 10)
    stuck_s = time.monotonic()
    wait_for(lambda: sim.output_ma(CHANNEL) == 0, timeout_s=2.0)
    assert time.monotonic() - stuck_s <= stimulator.keepalive_s + 0.5 + 0.2


def test_an_emergency_stop_halts_output_until_configured_again(stimulator: RehaStim2,
                                                               sim: SimProcess) -> None:
    stimulator.update({CHANNEL: 10})
    wait_for(lambda: sim.output_ma(CHANNEL) == 10)
    stimulator.emergency_stop()
    wait_for(lambda: sim.output_ma(CHANNEL) == 0)
    with pytest.raises(StimulatorError, match="halted"):
        stimulator.update({CHANNEL: 12})
    stimulator.configure([ChannelSetup(CHANNEL, 250)], frequency_hz=40.0)
    stimulator.update({CHANNEL: 12})
    assert wait_for(lambda: sim.output_ma(CHANNEL) == 12)
    stimulator.check()


def test_close_stops_the_output(stimulator: RehaStim2, sim: SimProcess) -> None:
    stimulator.update({CHANNEL: 10})
    wait_for(lambda: sim.output_ma(CHANNEL) == 10)
    stimulator.close()
    assert sim.delivered()[-1]["reason"] == "stop command"
    assert sim.output_ma(CHANNEL) == 0


def test_update_after_stop_initialises_channel_list_mode_again(stimulator: RehaStim2,
                                                               sim: SimProcess) -> None:
    stimulator.update({CHANNEL: 10})
    stimulator.stop()
    stimulator.update({CHANNEL: 14})
    assert wait_for(lambda: sim.output_ma(CHANNEL) == 14)


def test_an_unconfigured_channel_is_refused(stimulator: RehaStim2) -> None:
    with pytest.raises(StimulatorError, match="not configured"):
        stimulator.update({7: 10})


def test_silent_stimulator_raises(stimulator: RehaStim2, sim: SimProcess) -> None:
    stimulator.update({CHANNEL: 10})
    sim.command("stim silent")
    stimulator.update({CHANNEL: 12})
    assert "did not acknowledge" in raises_within(stimulator.check, StimulatorError)


def test_late_answer_raises(stimulator: RehaStim2, sim: SimProcess) -> None:
    sim.command("stim late 0.3")
    with pytest.raises(StimulatorError, match="within 100 ms"):
        stimulator.stop()


def test_error_answer_raises(stimulator: RehaStim2, sim: SimProcess) -> None:
    sim.command("stim refuse")
    with pytest.raises(StimulatorError, match="transfer error"):
        stimulator.stop()


def test_stimulation_error_from_the_device_raises(stimulator: RehaStim2,
                                                  sim: SimProcess) -> None:
    stimulator.update({CHANNEL: 10})
    wait_for(lambda: sim.output_ma(CHANNEL) == 10)
    sim.command("stim error electrode")
    assert "electrode error" in raises_within(stimulator.check, StimulatorError)
    assert sim.output_ma(CHANNEL) == 0


@pytest.mark.parametrize("fault", ["stim corrupt 1", "stim drop 0.5"])
def test_damaged_answers_are_no_answers(stimulator: RehaStim2, sim: SimProcess,
                                        fault: str) -> None:
    sim.command(fault)
    with pytest.raises(StimulatorError, match="did not acknowledge"):
        for _ in range(5):
            stimulator.stop()


def test_garbage_before_an_answer_is_skipped(stimulator: RehaStim2, sim: SimProcess) -> None:
    sim.command("stim garbage 40")
    stimulator.stop()
    assert stimulator.decoder.garbage_bytes >= 1


def test_vanished_port_raises(stimulator: RehaStim2, sim: SimProcess) -> None:
    sim.command("stim vanish")
    assert "lost the RehaStim 2" in raises_within(stimulator.check, StimulatorError)


def test_device_restart_during_output_is_an_error(stimulator: RehaStim2,
                                                  sim: SimProcess) -> None:
    """No heartbeat, so no keep-alive: the device's watchdog ends the output and the
    device announces itself again, which the driver reports as soon as it is asked."""
    stimulator.update({CHANNEL: 10})
    wait_for(lambda: sim.output_ma(CHANNEL) == 10)
    wait_for(lambda: sim.output_ma(CHANNEL) == 0)
    assert "restarted" in raises_within(stimulator.check, StimulatorError)


def test_no_device_on_the_port_is_an_error(sim: SimProcess) -> None:
    driver = RehaStim2(sim.imu, handshake_timeout_s=0.3)
    with pytest.raises(StimulatorError, match="no Init"):
        driver.connect()


# -- IMU ---------------------------------------------------------------------------------

def test_imu_samples_are_in_si_units_and_time_ordered(imu: WitMotionImu) -> None:
    samples = collect(imu, 30)
    gravity = [sum(a * a for a in s.acc_mps2) ** 0.5 for s in samples[:5]]
    assert all(8.0 < g < 11.5 for g in gravity)  # the walk starts standing still
    assert all(s.angle_deg is not None for s in samples)
    times = [s.t_s for s in samples]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_a_short_garbage_burst_is_skipped_and_counted(imu: WitMotionImu,
                                                      sim: SimProcess) -> None:
    collect(imu, 2)
    sim.command("imu garbage 40")
    collect(imu, 20)
    assert imu.decoder.garbage_bytes >= 1


@pytest.mark.parametrize("fault", ["imu garbage 400", "imu corrupt 1", "imu drop 0.6"])
def test_a_broken_imu_line_raises(imu: WitMotionImu, sim: SimProcess, fault: str) -> None:
    collect(imu, 2)
    sim.command(fault)
    assert "not valid packets" in raises_within(imu.read, SensorError)


def test_vanished_imu_port_raises(imu: WitMotionImu, sim: SimProcess) -> None:
    collect(imu, 2)
    sim.command("imu vanish")
    assert "lost the IMU" in raises_within(imu.read, SensorError)


def test_stalled_imu_sends_nothing(imu: WitMotionImu, sim: SimProcess) -> None:
    collect(imu, 2)
    sim.command("imu stall")
    drain(imu)
    time.sleep(0.1)  # ten sample periods of silence
    assert imu.read() == []


def test_frozen_imu_repeats_its_values(imu: WitMotionImu, sim: SimProcess) -> None:
    collect(imu, 2)
    sim.command("imu freeze")
    imu.read()
    samples = collect(imu, 10)[-5:]
    assert len({(s.acc_mps2, s.gyro_dps) for s in samples}) == 1
    assert len({s.t_s for s in samples}) == 5
