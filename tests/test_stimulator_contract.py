"""One contract for both stimulators: the serial driver (through ``fes-sim`` on real
pseudo-terminals) and the in-memory twin must give the same results for the same calls.

Both run the same ScienceMode host; these tests are what keeps the twin, which most
session tests use, honest about the driver.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from controller.devices.base import ChannelSetup, StimulatorError
from controller.devices.rehastim2 import RehaStim2
from simulator.inmemory import InMemoryStimulator
from tests.sim_process import running_simulator, wait_for

CHANNEL = 2
SETUP = [ChannelSetup(CHANNEL, 250)]
T = TypeVar("T")


class AnyStimulator(Protocol):
    def configure(self, channels: list[ChannelSetup], frequency_hz: float) -> None: ...
    def update(self, amplitudes_ma: dict[int, float]) -> None: ...
    def stop(self) -> None: ...
    def emergency_stop(self) -> None: ...
    def check(self) -> None: ...


class Bench(Protocol):
    """A stimulator and a hand on the device behind it."""

    stimulator: AnyStimulator
    keepalive_s: float

    def output_ma(self, channel: int) -> int: ...

    def until(self, condition: Callable[[], T]) -> T:
        """Let time pass (the loop's heartbeat going on) until ``condition`` holds."""

    def device(self, fault: str) -> None:
        """``silent``, ``refuse`` or ``ok``: the device's behaviour from now on."""


class SerialBench:
    def __init__(self, tmp_path: Path) -> None:
        self._context = running_simulator(tmp_path, "--init-interval", "0.05",
                                          "--watchdog", "0.5")
        self.sim = self._context.__enter__()
        self.keepalive_s = 0.1
        self.stimulator = RehaStim2(self.sim.stimulator, keepalive_s=self.keepalive_s)
        self.stimulator.connect()

    def output_ma(self, channel: int) -> int:
        return self.sim.output_ma(channel)

    def until(self, condition: Callable[[], T]) -> T:
        def beating() -> T:
            self.stimulator.check()
            return condition()
        return wait_for(beating, timeout_s=3.0)

    def device(self, fault: str) -> None:
        self.sim.command(f"stim {fault}")

    def close(self) -> None:
        try:
            self.stimulator.close()
        finally:
            self._context.__exit__(None, None, None)


class TwinBench:
    TICK_S = 0.01

    def __init__(self) -> None:
        self.now_s = 0.0
        self.twin = InMemoryStimulator(lambda: self.now_s)
        self.stimulator = self.twin
        self.keepalive_s = self.twin.host.keepalive_s
        self.twin.connect()

    def output_ma(self, channel: int) -> int:
        return self.twin.model.output.get(channel, (0, 0))[0]

    def until(self, condition: Callable[[], T]) -> T:
        for _ in range(round(3.0 / self.TICK_S)):
            if result := condition():
                return result
            self.now_s += self.TICK_S
            self.twin.check()
        raise AssertionError("the condition never held")

    def device(self, fault: str) -> None:
        self.twin.device.silent = fault == "silent"
        self.twin.device.refuse = fault == "refuse"

    def close(self) -> None:
        self.twin.close()


@pytest.fixture(params=["twin", "serial"])
def bench(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SerialBench | TwinBench]:
    made: SerialBench | TwinBench = SerialBench(tmp_path) if request.param == "serial" \
        else TwinBench()
    made.stimulator.configure(SETUP, frequency_hz=40.0)
    try:
        yield made
    finally:
        made.close()


def test_an_update_is_delivered_rounded_down_to_the_device_step(bench: Bench) -> None:
    bench.stimulator.update({CHANNEL: 21.5})
    bench.until(lambda: bench.output_ma(CHANNEL) == 20)


def test_an_update_after_a_stop_initialises_channel_list_mode_again(bench: Bench) -> None:
    bench.stimulator.update({CHANNEL: 10})
    bench.until(lambda: bench.output_ma(CHANNEL) == 10)
    bench.stimulator.stop()
    assert bench.output_ma(CHANNEL) == 0
    bench.stimulator.update({CHANNEL: 14})
    bench.until(lambda: bench.output_ma(CHANNEL) == 14)


def test_an_emergency_stop_refuses_output_until_configured_again(bench: Bench) -> None:
    bench.stimulator.update({CHANNEL: 10})
    bench.until(lambda: bench.output_ma(CHANNEL) == 10)
    bench.stimulator.emergency_stop()
    bench.until(lambda: bench.output_ma(CHANNEL) == 0)
    with pytest.raises(StimulatorError, match="halted"):
        bench.stimulator.update({CHANNEL: 12})
    bench.stimulator.configure(SETUP, frequency_hz=40.0)
    bench.stimulator.update({CHANNEL: 12})
    bench.until(lambda: bench.output_ma(CHANNEL) == 12)


def test_an_unconfigured_channel_is_refused(bench: Bench) -> None:
    with pytest.raises(StimulatorError, match="not configured"):
        bench.stimulator.update({7: 10})


def test_a_configuration_beyond_the_hard_limits_is_refused_before_it_is_sent(
        bench: Bench) -> None:
    """500 Hz is a parameter error at the device too, but the driver must not rely on that:
    the block is refused before a byte is written, so the device still runs the old one."""
    bench.stimulator.update({CHANNEL: 10})
    bench.until(lambda: bench.output_ma(CHANNEL) == 10)
    with pytest.raises(StimulatorError, match="frequency 500.0 Hz is outside 1-100 Hz"):
        bench.stimulator.configure(SETUP, frequency_hz=500.0)
    assert bench.output_ma(CHANNEL) == 10
    bench.stimulator.check()


def test_a_configuration_the_device_refuses_is_an_error(bench: Bench) -> None:
    bench.device("refuse")
    with pytest.raises(StimulatorError, match="refused .*transfer error"):
        bench.stimulator.configure(SETUP, frequency_hz=40.0)


def test_an_unanswered_update_is_raised_by_a_later_check(bench: Bench) -> None:
    bench.stimulator.update({CHANNEL: 10})
    bench.until(lambda: bench.output_ma(CHANNEL) == 10)
    bench.device("silent")
    bench.stimulator.update({CHANNEL: 12})
    # a link check sent at the steady 10 mA may be the first to miss its deadline
    with pytest.raises(StimulatorError,
                       match="did not acknowledge (update|link check) within 100 ms"):
        bench.until(lambda: False)


def test_an_unanswered_stop_is_an_error(bench: Bench) -> None:
    bench.device("silent")
    with pytest.raises(StimulatorError, match="did not acknowledge stop within 100 ms"):
        bench.stimulator.stop()


def test_a_refused_stop_is_an_error(bench: Bench) -> None:
    bench.device("refuse")
    with pytest.raises(StimulatorError, match="refused stop: transfer error"):
        bench.stimulator.stop()


def test_a_stop_the_device_never_heard_is_repeated_by_the_keep_alive(bench: Bench) -> None:
    bench.stimulator.update({CHANNEL: 10})
    bench.until(lambda: bench.output_ma(CHANNEL) == 10)
    bench.device("silent")
    with pytest.raises(StimulatorError):
        bench.stimulator.stop()
    assert bench.output_ma(CHANNEL) == 10, "the device did not hear the stop"
    bench.device("ok")
    started_s = time.monotonic()
    bench.until(lambda: bench.output_ma(CHANNEL) == 0)
    assert time.monotonic() - started_s < 2.0


def test_a_refused_update_leaves_the_output_as_it_was(bench: Bench) -> None:
    bench.stimulator.update({CHANNEL: 10})
    bench.until(lambda: bench.output_ma(CHANNEL) == 10)
    bench.device("refuse")
    bench.stimulator.update({CHANNEL: 20})
    with pytest.raises(StimulatorError, match="refused update: transfer error"):
        bench.until(lambda: False)
    assert bench.output_ma(CHANNEL) == 10, "a refused command was carried out"


def test_a_refusing_device_is_stopped_by_its_watchdog_not_by_the_refused_stop(
        bench: Bench) -> None:
    """A transfer error means the device could not read the command: the stop does not
    happen, and the refused packets do not feed the device's watchdog either."""
    bench.stimulator.update({CHANNEL: 10})
    bench.until(lambda: bench.output_ma(CHANNEL) == 10)
    bench.device("refuse")
    with pytest.raises(StimulatorError, match="refused stop"):
        bench.stimulator.stop()
    assert bench.output_ma(CHANNEL) == 10
    bench.until(lambda: bench.output_ma(CHANNEL) == 0)


@pytest.mark.parametrize("fault", ["silent", "refuse"])
def test_a_link_that_fails_at_a_steady_amplitude_is_noticed_without_a_new_command(
        bench: Bench, fault: str) -> None:
    """No update is sent while the amplitude holds; the driver's poll still finds out."""
    bench.stimulator.update({CHANNEL: 10})
    bench.until(lambda: bench.output_ma(CHANNEL) == 10)
    bench.device(fault)
    with pytest.raises(StimulatorError, match="link check"):
        bench.until(lambda: False)
