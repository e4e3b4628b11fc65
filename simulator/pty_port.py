"""One end of a pseudo-terminal that a simulated device talks through.

The controller opens the slave path exactly like a USB serial adapter. We keep our own
slave descriptor open so the terminal survives the controller closing and reopening it (a
real adapter does too), and write without blocking: bytes nobody reads are dropped once the
kernel's buffer is full, as a sensor streaming into an unread port loses them.
"""

from __future__ import annotations

import os
import tty


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

    def vanish(self) -> None:
        """Close both ends: the controller's descriptor reads EIO, the path is gone."""
        if self._master is None:
            return
        os.close(self._master)
        os.close(self._slave)
        self._master = None
