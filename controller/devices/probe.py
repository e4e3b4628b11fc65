"""What is on the serial ports: ``fes devices``.

Listing comes from ``serial.tools.list_ports``; each port is then opened and listened to,
never written to (a stimulator must not be sent anything we did not mean): a RehaStim 2
announces itself with Init frames at 460800 baud 8E1, a WitMotion IMU streams 0x55 packets
(tried at its usual rates, 115200 then 9600 baud). A port that is busy or silent is listed
as unknown, with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import serial
from serial.tools import list_ports

from controller.devices import sciencemode as sm
from controller.devices import witmotion as wm
from controller.devices.serial_port import PORT_ERRORS, SerialPort, open_port, read_available

REHASTIM_LISTEN_S = 1.2
"""Longer than the interval at which the device repeats Init while unanswered."""
IMU_LISTEN_S = 0.3
IMU_PACKETS_NEEDED = 3
IMU_BAUDS = (115200, 9600)


@dataclass(frozen=True, slots=True)
class FoundDevice:
    port: str
    description: str
    kind: str
    """``rehastim2``, ``witmotion`` or ``unknown``."""
    detail: str


def _listen(port: SerialPort, listen_s: float, found: Callable[[bytes], bool]) -> bool:
    deadline = time.monotonic() + listen_s
    while time.monotonic() < deadline:
        if found(read_available(port)):
            return True
    return False


class _InitMatcher:
    def __init__(self) -> None:
        self.decoder = sm.Decoder()

    def __call__(self, data: bytes) -> bool:
        return any(isinstance(p.message, sm.Init) for p in self.decoder.feed(data))


class _ImuMatcher:
    def __init__(self) -> None:
        self.decoder = wm.Decoder()
        self.count = 0

    def __call__(self, data: bytes) -> bool:
        self.count += len(self.decoder.feed(data))
        return self.count >= IMU_PACKETS_NEEDED


def probe(path: str) -> tuple[str, str]:
    """(kind, detail) of whatever answers on ``path``."""
    attempts: list[tuple[str, int, str, float, Callable[[bytes], bool]]] = [
        ("rehastim2", 460800, serial.PARITY_EVEN, REHASTIM_LISTEN_S, _InitMatcher())]
    attempts += [("witmotion", baud, serial.PARITY_NONE, IMU_LISTEN_S, _ImuMatcher())
                 for baud in IMU_BAUDS]
    for kind, baud, parity, listen_s, matcher in attempts:
        try:
            port = open_port(path, baud, parity, 0.02)
        except PORT_ERRORS as exc:
            return "unknown", f"cannot open: {exc}"
        try:
            if _listen(port, listen_s, matcher):
                return kind, f"{baud} baud"
        except PORT_ERRORS as exc:
            return "unknown", f"read failed: {exc}"
        finally:
            port.close()
    return "unknown", "nothing we recognise answered"


def list_devices(paths: Sequence[str] | None = None) -> list[FoundDevice]:
    """Probe ``paths``, or every serial port the system lists."""
    if paths is None:
        ports = [(info.device, info.description or "") for info in list_ports.comports()]
    else:
        ports = [(path, "") for path in paths]
    return [FoundDevice(path, description, *probe(path)) for path, description in ports]
