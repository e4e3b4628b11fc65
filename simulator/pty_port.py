"""One end of a pseudo-terminal that a simulated device talks through.

The controller opens the slave path exactly like a USB serial adapter. We keep our own
slave descriptor open so the terminal survives the controller closing and reopening it (a
real adapter does too), and write without blocking: bytes nobody reads are dropped once the
kernel's buffer is full, as a sensor streaming into an unread port loses them.

A pseudo-terminal cannot hold parity: it drops PARENB, and the kernel refuses (EINVAL) a
``tcsetattr`` whose only change is one it drops. So a second client asking for exactly
what the first one left behind plus even parity (a RehaStim 2 is 8E1) would be refused.
:meth:`PtyPort.forget_settings` puts the line speed back to a neutral value, which the
simulator does every ``FORGET_S`` seconds, so every client's open changes the speed and is
accepted; a pty carries bytes the same at any speed, so a connected client notices nothing.
"""

from __future__ import annotations

import os
import termios
import tty

NEUTRAL_SPEED = termios.B38400
"""The speed a fresh pseudo-terminal starts at; no serial driver here asks for it."""
FORGET_S = 0.05


class PtyPort:
    def __init__(self) -> None:
        self._master: int | None
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self.dropped_bytes = 0

    @property
    def fd(self) -> int | None:
        return self._master

    @property
    def open(self) -> bool:
        return self._master is not None

    def read(self) -> bytes:
        if self._master is None:
            return b""
        try:
            return os.read(self._master, 4096)
        except (BlockingIOError, OSError):
            return b""

    def write(self, data: bytes) -> None:
        if self._master is None or not data:
            return
        try:
            written = os.write(self._master, data)
        except BlockingIOError:
            written = 0
        self.dropped_bytes += len(data) - written

    def forget_settings(self) -> None:
        """Put the line speed back to :data:`NEUTRAL_SPEED` if a client changed it."""
        if self._master is None:
            return
        try:
            attributes = termios.tcgetattr(self._slave)
            if attributes[4] != NEUTRAL_SPEED or attributes[5] != NEUTRAL_SPEED:
                attributes[4] = attributes[5] = NEUTRAL_SPEED
                termios.tcsetattr(self._slave, termios.TCSANOW, attributes)
        except (OSError, termios.error):
            pass  # a terminal that cannot be set is no worse than before

    def vanish(self) -> None:
        """Close both ends: the controller's descriptor reads EIO, the path is gone."""
        if self._master is None:
            return
        os.close(self._master)
        os.close(self._slave)
        self._master = None
