"""``fes-sim`` as a device: its handshake, refusals and watchdog, and a controller process
that dies mid-burst."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from controller.assembly.urls import DeviceUrlError, open_motion_sensor, open_stimulator
from controller.clock import VirtualClock
from controller.devices import sciencemode as sm
from controller.devices.base import StimulatorError
from controller.devices.probe import list_devices
from controller.devices.rehastim2 import RehaStim2
from controller.devices.witmotion_imu import WitMotionImu
from controller.record import read_rows
from tests.sim_process import SimProcess, running_simulator, wait_for

WATCHDOG_S = 0.5
CONTROLLER = """
import sys, time
from controller.devices.base import ChannelSetup
from controller.devices.rehastim2 import RehaStim2
stimulator = RehaStim2(sys.argv[1])
stimulator.connect()
stimulator.configure([ChannelSetup(1, 300)], 30.0)
stimulator.update({1: 24.0})
print("on", flush=True)
time.sleep(60)
"""


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    with running_simulator(tmp_path, "--init-interval", "0.05",
                           "--watchdog", str(WATCHDOG_S)) as process:
        yield process


@pytest.fixture
def raw(sim: SimProcess) -> Iterator[serial.Serial]:
    port = serial.Serial(sim.stimulator, 460800, parity=serial.PARITY_EVEN, timeout=0.05)
    try:
        yield port
    finally:
        port.close()


def next_message(port: serial.Serial, decoder: sm.Decoder,
                 wanted: type | tuple[type, ...]) -> sm.Packet:
    def arrived() -> sm.Packet | None:
        for packet in decoder.feed(port.read(64)):
            if isinstance(packet.message, wanted):
                return packet
        return None

    found = wait_for(arrived)
    assert found is not None  # wait_for returns only a truthy value
    return found


def connected(port: serial.Serial) -> sm.Decoder:
    decoder = sm.Decoder()
    init = next_message(port, decoder, sm.Init)
    port.write(sm.encode(sm.InitAck(), init.number))
    return decoder


def ask(port: serial.Serial, decoder: sm.Decoder, message: sm.Message) -> sm.Message:
    port.write(sm.encode(message, 1))
    return next_message(port, decoder, (sm.Ack, sm.UnknownCommandAck)).message


@pytest.fixture
def controller(sim: SimProcess) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen([sys.executable, "-c", CONTROLLER, sim.stimulator],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "on\n"
        wait_for(lambda: sim.output_ma(1) == 24)
        yield process
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_the_device_announces_itself_until_answered(raw: serial.Serial) -> None:
    decoder = sm.Decoder()
    first = next_message(raw, decoder, sm.Init)
    second = next_message(raw, decoder, sm.Init)
    assert second.number != first.number
    assert first.message == sm.Init(sm.PROTOCOL_VERSION)


def test_commands_before_the_handshake_are_ignored(raw: serial.Serial) -> None:
    decoder = sm.Decoder()
    raw.write(sm.encode(sm.StopChannelListMode()))
    next_message(raw, decoder, sm.Init)
    connected(raw)
    assert ask(raw, decoder, sm.StopChannelListMode()) == sm.Ack(
        sm.Command.STOP_CHANNEL_LIST_MODE_ACK)


@pytest.mark.parametrize(("message", "result"), [
    (sm.StartChannelListMode((sm.ChannelPulse(200, 10),)), sm.Result.WRONG_MODE),
    (sm.InitChannelListMode((1,), main_interval_ms=2.0), sm.Result.PARAMETER_ERROR),
])
def test_the_device_refuses_what_it_cannot_do(raw: serial.Serial, message: sm.Message,
                                              result: sm.Result) -> None:
    decoder = connected(raw)
    answer = ask(raw, decoder, message)
    assert isinstance(answer, sm.Ack) and answer.result == result


def test_too_much_current_is_refused(raw: serial.Serial, sim: SimProcess) -> None:
    decoder = connected(raw)
    ask(raw, decoder, sm.InitChannelListMode((1,), main_interval_ms=25.0))
    answer = ask(raw, decoder, sm.StartChannelListMode((sm.ChannelPulse(200, 130),)))
    assert answer == sm.Ack(sm.Command.START_CHANNEL_LIST_MODE_ACK, sm.Result.PARAMETER_ERROR)
    assert sim.output_ma(1) == 0


def test_an_unknown_command_gets_unknown_command(raw: serial.Serial) -> None:
    decoder = connected(raw)
    assert ask(raw, decoder, sm.UnknownMessage(77, b"")) == sm.UnknownCommandAck()


def test_a_bad_control_command_is_reported_not_fatal(sim: SimProcess) -> None:
    assert sim.process.stdin is not None
    sim.process.stdin.write("imu explode\n")
    sim.process.stdin.flush()
    assert "error" in sim.next_line()
    sim.command("imu ok")


def test_sigkill_mid_burst_leaves_the_stimulator_off_within_its_watchdog(
        controller: subprocess.Popen[str], sim: SimProcess) -> None:
    controller.kill()
    controller.wait()
    off = wait_for(lambda: [e for e in sim.delivered() if e["current_ma"] == 0],
                   timeout_s=3 * WATCHDOG_S)
    assert off[-1]["reason"] == "device watchdog: controller silent"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_controller_sends_stop(controller: subprocess.Popen[str],
                                               sim: SimProcess, signum: int) -> None:
    controller.send_signal(signum)
    assert controller.wait(timeout=5.0) != 0
    off = wait_for(lambda: [e for e in sim.delivered() if e["current_ma"] == 0])
    assert off[-1]["reason"] == "stop command"


def test_probe_tells_the_stimulator_from_the_imu(sim: SimProcess) -> None:
    found = list_devices([sim.stimulator, sim.imu])
    assert [device.kind for device in found] == ["rehastim2", "witmotion"]


def test_device_urls_open_the_serial_drivers(sim: SimProcess) -> None:
    clock = VirtualClock(0.01)
    stimulator = open_stimulator(f"serial://{sim.stimulator}?baud=460800", clock)
    sensor = open_motion_sensor(f"serial://{sim.imu}", clock)
    try:
        assert isinstance(stimulator, RehaStim2) and isinstance(sensor, WitMotionImu)
        stimulator.connect()
        wait_for(sensor.read)
    finally:
        stimulator.close()
        sensor.close()


def test_unknown_device_urls_say_what_would_work() -> None:
    with pytest.raises(DeviceUrlError, match="serial://PORT"):
        open_stimulator("usb://0", VirtualClock(0.01))


def fes(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller.cli", *args], check=False,
                          capture_output=True, text=True, timeout=60)


def fes_run(sim: SimProcess, db: Path) -> subprocess.CompletedProcess[str]:
    return fes("run", "--stimulator", f"serial://{sim.stimulator}",
               "--imu", f"serial://{sim.imu}", "--duration", "1", "--db", str(db))


def opened_and_ran(done: subprocess.CompletedProcess[str], db: Path, sessions: int) -> None:
    """The session opened both ports and ran: exit 0, or 1 if it faulted (a loaded machine
    can starve the IMU stream past sensor_silent_s), never 2 (refused) or a traceback."""
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert read_rows(db, "SELECT count(*) FROM sessions") == [(sessions,)]


def test_one_simulator_serves_one_fes_run_after_another(sim: SimProcess,
                                                        tmp_path: Path) -> None:
    """The first client leaves its line settings on the pty; the second must still open."""
    db = tmp_path / "record.sqlite"
    for sessions in (1, 2):
        opened_and_ran(fes_run(sim, db), db, sessions)


def test_fes_devices_then_fes_run(sim: SimProcess, tmp_path: Path) -> None:
    listed = fes("devices", sim.stimulator, sim.imu)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    db = tmp_path / "record.sqlite"
    opened_and_ran(fes_run(sim, db), db, 1)


def test_a_terminal_that_refuses_the_line_settings_is_a_clear_error(tmp_path: Path) -> None:
    """A bare pty, with no simulator forgetting its settings: the second open with parity
    is refused by the kernel, and the driver says so instead of raising termios.error."""
    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        path = os.ttyname(slave)
        serial.Serial(path, 460800, parity=serial.PARITY_EVEN).close()
        with pytest.raises(StimulatorError, match=f"cannot open {path}: the terminal refused the line settings"):
            RehaStim2(path, handshake_timeout_s=0.1).connect()
    finally:
        os.close(master)
        os.close(slave)
