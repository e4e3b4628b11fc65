"""Output that cannot hold a session's process hostage.

A session's command line prints while the control loop runs and a summary at the end. If
the reader of standard output stops reading (a pipe into a program that never reads, a
terminal stopped with Ctrl-S), an ordinary write blocks for ever and the process never
exits, although the session itself has ended. :class:`BoundedOutput` waits a bounded time
for the reader; after that it drops what it cannot write, so the process still exits.
"""

from __future__ import annotations

import os
import select
from typing import TextIO

PATIENCE_S = 5.0
"""How long one write waits for a reader that has stopped reading before output is dropped."""
CHUNK_BYTES = 512
"""Bytes written at a time, each after the descriptor reports room (a pipe's poll promises
a page, a terminal's a few hundred bytes)."""


class BoundedOutput:
    """A text stream over a file descriptor whose writes wait at most ``patience_s``.

    Once a write has waited that long (or the reader has gone, a broken pipe), the stream
    is ``stalled`` and later writes are dropped at once, so a stuck reader costs one wait.
    """

    def __init__(self, stream: TextIO, patience_s: float = PATIENCE_S) -> None:
        self._stream = stream
        self._fd = stream.fileno()
        self._patience_s = patience_s
        self.encoding = stream.encoding or "utf-8"
        self.stalled = False

    def write(self, text: str) -> int:
        pending = memoryview(text.encode(self.encoding, errors="replace"))
        poller = select.poll()
        poller.register(self._fd, select.POLLOUT)
        while pending and not self.stalled:
            if not poller.poll(self._patience_s * 1000):
                self.stalled = True
                break
            try:
                pending = pending[os.write(self._fd, pending[:CHUNK_BYTES]):]
            except BlockingIOError:
                continue
            except OSError:  # the reader has gone (broken pipe) or the descriptor is dead
                self.stalled = True
        return len(text)

    def flush(self) -> None:
        """Writes go straight to the descriptor; nothing is buffered here."""

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._fd


def bounded(stream: TextIO) -> TextIO | BoundedOutput:
    """``stream`` behind a bounded wait, or as it is when it has no descriptor (a test's
    captured output)."""
    try:
        stream.fileno()
    except (OSError, ValueError, AttributeError):
        return stream
    return BoundedOutput(stream)
