"""What the serial drivers need from pyserial, and their one reader thread.

Both drivers open ports by URL (a device path, or any ``serial_for_url`` scheme such as
``loop://``) and read with the same rule: block for the first byte at most ``poll_s``, then
take whatever else has already arrived, so a packet is handed on as soon as it is complete
instead of when a fixed-size read fills up.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Protocol, cast

import serial

if sys.platform == "win32":
    _TERMINAL_ERRORS: tuple[type[Exception], ...] = ()
else:
    import termios
    _TERMINAL_ERRORS = (termios.error,)

PORT_ERRORS = (serial.SerialException, OSError, TypeError, ValueError, *_TERMINAL_ERRORS)
"""What opening or a vanishing port raises from inside pyserial (TypeError/ValueError come
from a port closed under a blocked read; ``termios.error``, which is not an OSError, from
a terminal that refuses the line settings, such as a pseudo-terminal asked for parity)."""


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
    try:
        port = serial.serial_for_url(url, baudrate=baud, bytesize=serial.EIGHTBITS,
                                     parity=parity, stopbits=serial.STOPBITS_ONE,
                                     timeout=poll_s, write_timeout=WRITE_TIMEOUT_S)
    except _TERMINAL_ERRORS as exc:
        raise serial.SerialException(
            f"the terminal refused the line settings ({baud} baud, 8 data bits, parity "
            f"{parity}, 1 stop bit): {exc}") from exc
    return cast(SerialPort, port)


def read_available(port: SerialPort) -> bytes:
    data = port.read(1)
    waiting = port.in_waiting
    return data + port.read(waiting) if data and waiting else data


class PortReader:
    """The one reader thread of a serial driver (pyserial's ``serial.threaded`` pattern).

    It owns all reads of ``port``: every read, with bytes or empty after the poll time,
    goes to ``on_read`` (so a driver can also let time act there, such as a keep-alive);
    the first port error goes to ``on_lost``, unless the reader was stopped, which is how
    a port closed on purpose ends it.
    """

    def __init__(self, port: SerialPort, name: str, on_read: Callable[[bytes], None],
                 on_lost: Callable[[Exception], None]) -> None:
        self._port = port
        self._on_read = on_read
        self._on_lost = on_lost
        self._running = True
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, join_s: float = 1.0) -> None:
        """Stop reading (close the port after, or before, to end a blocked read)."""
        self._running = False
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=join_s)

    def _loop(self) -> None:
        try:
            while self._running:
                self._on_read(read_available(self._port))
        except PORT_ERRORS as exc:
            if self._running:
                self._on_lost(exc)
