"""Interop with an independent ScienceMode 2 implementation: the ``pysciencemode`` package.

It drives ``fes-sim``'s stimulator over a real pseudo-terminal, and the bytes it sends for
each command are the bytes our encoder makes for the same command and packet number.
The one known difference: for a packet number in the stuffed set (0x0A, 0x0F, 0x55, 0x81,
0xF0) pysciencemode XORs the number with the key but leaves out the escape byte; we escape
it (see :mod:`controller.devices.sciencemode`). Our decoder reads both forms.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.devices import sciencemode as sm
from simulator.pty_rehastim import RehaStimDevice
from simulator.rehastim_model import RehaStimModel
from tests.sim_process import SimProcess, running_simulator, wait_for

psm = pytest.importorskip(
    "pysciencemode", reason="pysciencemode is not installed (it is in the test extra: pip install -e '.[test]')")
psm_utils = pytest.importorskip("pysciencemode.utils")
psm_core = pytest.importorskip("pysciencemode.sciencemode")


def in_thread(work: Callable[[], Any], timeout_s: float = 10.0) -> None:
    """pysciencemode waits for answers without a timeout: run it where a hang fails the
    test instead of freezing it."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), "pysciencemode hung waiting for an answer"
    if errors:
        raise errors[0]


def channel(amplitude_ma: int) -> Any:
    return psm.Channel(mode="Single", no_channel=1, amplitude=amplitude_ma, pulse_width=300,
                       device_type=psm.Device.Rehastim2)


def session(port: str, on_started: Callable[[], None]) -> None:
    stimulator = psm.Rehastim2(port)
    try:
        stimulator.init_channel(stimulation_interval=25, list_channels=[channel(20)])
        stimulator.start_stimulation(upd_list_channels=[channel(20)])
        on_started()
        stimulator.start_stimulation(upd_list_channels=[channel(12)])
        stimulator.end_stimulation()
    finally:
        stimulator.disconnect()
        stimulator.close_port()


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    with running_simulator(tmp_path, "--init-interval", "0.05") as process:
        yield process


def test_pysciencemode_drives_the_simulated_stimulator(sim: SimProcess) -> None:
    def started() -> None:
        wait_for(lambda: sim.output_ma(1) == 20)

    in_thread(lambda: session(sim.stimulator, started))
    currents = [entry["current_ma"] for entry in sim.delivered()]
    assert currents == [20, 12, 0]
    assert sim.delivered()[-1]["reason"] == "stop command"


class CapturingPort:
    """Stands in for ``serial.Serial`` inside pysciencemode: our device model answers, and
    every byte pysciencemode writes is kept."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.written = bytearray()
        self.device = RehaStimDevice(RehaStimModel(), init_interval_s=60.0)
        self._now_s = 0.0
        self._to_host = bytearray(self.device.outgoing(self._now_s))

    def write(self, data: bytes) -> int:
        self.written += data
        self._now_s += 0.001
        self.device.receive(bytes(data), self._now_s)
        self._to_host += self.device.outgoing(self._now_s)
        return len(data)

    def inWaiting(self) -> int:
        return len(self._to_host)

    def read(self, size: int = 1) -> bytes:
        data = bytes(self._to_host[:size])
        del self._to_host[:size]
        return data

    def close(self) -> None:
        pass


def test_our_encoder_sends_the_same_bytes_as_pysciencemode(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ports: list[CapturingPort] = []

    def make_port(*args: object, **kwargs: object) -> CapturingPort:
        ports.append(CapturingPort())
        return ports[-1]

    monkeypatch.setattr(psm_core.serial, "Serial", make_port)
    in_thread(lambda: session("captured", lambda: None))
    decoder = sm.Decoder()
    packets = decoder.feed(bytes(ports[0].written))
    assert decoder.garbage_bytes == 0
    kinds = [type(packet.message) for packet in packets]
    for needed in (sm.InitAck, sm.InitChannelListMode, sm.StartChannelListMode,
                   sm.StopChannelListMode):
        assert needed in kinds
    ours = b"".join(sm.encode(packet.message, packet.number) for packet in packets)
    assert ours == bytes(ports[0].written)
    assert ports[0].device.model.delivered[-1].reason == "stop command"


@pytest.mark.parametrize("number", [0, 1, 7, 0x54, 0x56, 200, 255])
def test_single_commands_match_pysciencemode_byte_for_byte(number: int) -> None:
    construct = psm_utils.packet_construction
    assert sm.encode(sm.Watchdog(), number) == construct(number, "Watchdog")
    assert sm.encode(sm.StopChannelListMode(), number) == construct(number,
                                                                    "StopChannelListMode")
    assert sm.encode(sm.InitAck(), number) == construct(number, "InitAck", [0])
    start = sm.StartChannelListMode((sm.ChannelPulse(300, 20), sm.ChannelPulse(0x0F, 0x55)))
    assert sm.encode(start, number) == construct(
        number, "StartChannelListMode", [0, 1, 44, 20, 0, 0, 0x0F, 0x55])
    init = sm.InitChannelListMode((1, 3), main_interval_ms=25.0)
    assert sm.encode(init, number) == construct(
        number, "InitChannelListMode", [0, 0b101, 0, 1, 0, 48, 0])


@pytest.mark.parametrize("number", [0x0A, 0x0F, 0x55, 0x81, 0xF0])
def test_their_unescaped_packet_numbers_still_decode(number: int) -> None:
    frame = psm_utils.packet_construction(number, "StopChannelListMode")
    [packet] = sm.Decoder().feed(frame)
    assert packet.message == sm.StopChannelListMode()
    assert packet.number == number ^ sm.STUFFING_KEY
