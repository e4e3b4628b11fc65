"""What the serial drivers need from pyserial, in one place.

Both drivers open ports by URL (a device path, or any ``serial_for_url`` scheme such as
``loop://``) and read with the same rule: block for the first byte at most ``poll_s``, then
take whatever else has already arrived, so a packet is handed on as soon as it is complete
instead of when a fixed-size read fills up.
"""

from __future__ import annotations

from typing import Protocol, cast

import serial

PORT_ERRORS = (serial.SerialException, OSError, TypeError, ValueError)
"""What a vanishing port raises from inside pyserial (TypeError/ValueError come from a
port closed under a blocked read)."""


class SerialPort(Protocol):
    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def flush(self) -> None: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


WRITE_TIMEOUT_S = 0.1
"""A write that the other end does not take within this raises instead of blocking the
control loop (or an exit path) for good."""


def open_port(url: str, baud: int, parity: str, poll_s: float) -> SerialPort:
    """Open ``url`` 8 data bits, 1 stop bit; raises pyserial's errors or OSError."""
    port = serial.serial_for_url(url, baudrate=baud, bytesize=serial.EIGHTBITS,
                                 parity=parity, stopbits=serial.STOPBITS_ONE, timeout=poll_s,
                                 write_timeout=WRITE_TIMEOUT_S)
    return cast(SerialPort, port)


def read_available(port: SerialPort) -> bytes:
    data = port.read(1)
    waiting = port.in_waiting
    return data + port.read(waiting) if data and waiting else data
