"""First contact with a WitMotion IMU: how fast it streams, and setting it to stream faster.

Factory units stream at 10 Hz (at 9600 baud on older models), too slow for gait (50 Hz)
and slower than the 100 Hz the detectors are built on. The rate is measured by counting
angular-velocity packets (one per sample) for a second; the rate is changed with the
unlock, return-rate and save commands of the WitMotion register protocol, then measured
again. Baud rate: at 9600 baud the three packets of a sample (33 bytes) fit at most about
29 times a second, so 100 Hz also needs 115200 baud; that command is sent too when the
unit answered at 9600. (A pseudo-terminal has no baud rate, so the simulator cannot show
the baud change; the rate change it honours.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import serial

from controller.devices import witmotion as wm
from controller.devices.probe import IMU_BAUDS
from controller.devices.serial_port import PORT_ERRORS, open_port, read_available

COUNT_S = 1.0
"""How long packets are counted to measure the rate."""
SETTLE_S = 0.3
"""Time for the unit to apply and save a setting before it is measured again."""
TARGET_RATE_HZ = 100.0
FAST_BAUD = 115200


@dataclass(frozen=True)
class ImuStream:
    baud: int
    rate_hz: float


class ImuSetupError(RuntimeError):
    """The port cannot be opened, or no WitMotion stream was found on it."""


def measure(path: str, bauds: tuple[int, ...] = IMU_BAUDS) -> ImuStream:
    """The baud rate the unit answers at and the samples per second it sends."""
    for baud in bauds:
        rate_hz = _count_rate(path, baud)
        if rate_hz > 0:
            return ImuStream(baud, rate_hz)
    raise ImuSetupError(f"{path}: no WitMotion packets at {' or '.join(map(str, bauds))} baud")


def set_rate(path: str, found: ImuStream, rate_hz: float = TARGET_RATE_HZ) -> ImuStream:
    """Tell the unit to stream at ``rate_hz`` (and at 115200 baud if it was at 9600),
    save it, and measure again."""
    code = next(c for c, hz in wm.RATE_CODES_HZ.items() if hz == rate_hz)
    commands = [wm.ConfigCommand(wm.Register.UNLOCK, wm.UNLOCK_KEY),
                wm.ConfigCommand(wm.Register.RATE, code)]
    if found.baud < FAST_BAUD:
        baud_code = next(c for c, baud in wm.BAUD_CODES.items() if baud == FAST_BAUD)
        commands.append(wm.ConfigCommand(wm.Register.BAUD, baud_code))
    commands.append(wm.ConfigCommand(wm.Register.SAVE, 0))
    try:
        port = open_port(path, found.baud, serial.PARITY_NONE, 0.02)
        try:
            for command in commands:
                port.write(wm.encode_config(command))
                time.sleep(0.05)  # the unit needs a moment between register writes
        finally:
            port.close()
    except PORT_ERRORS as exc:
        raise ImuSetupError(f"{path}: cannot write the settings: {exc}") from None
    time.sleep(SETTLE_S)
    return measure(path, (FAST_BAUD, found.baud) if found.baud < FAST_BAUD else (found.baud,))


def _count_rate(path: str, baud: int) -> float:
    try:
        port = open_port(path, baud, serial.PARITY_NONE, 0.02)
    except PORT_ERRORS as exc:
        raise ImuSetupError(f"{path}: cannot open: {exc}") from None
    decoder = wm.Decoder()
    samples = 0
    try:
        read_available(port)  # whatever was queued before we listened
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < COUNT_S:
            samples += sum(isinstance(p, wm.AngularVelocity)
                           for p in decoder.feed(read_available(port)))
    except PORT_ERRORS as exc:
        raise ImuSetupError(f"{path}: read failed: {exc}") from None
    finally:
        port.close()
    return samples / elapsed
