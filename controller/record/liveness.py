"""Whether the process that was writing a session is still alive.

A session row keeps its writer's host, process id and a token for that process (the boot
and the process's start time on Linux), so a process id reused after the writer died is
not mistaken for the writer.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def this_host() -> str:
    return socket.gethostname()


def process_token(pid: int) -> str:
    """Boot id and start time of ``pid`` where the system tells them, else empty."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces; the fields after its ')' are plain.
    started = stat.rsplit(")", 1)[1].split()[19]
    return f"{boot}:{started}"


def is_dead(pid: int | None, token: str | None) -> bool:
    """True when no process ``pid`` runs here, or a different one has its number now."""
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return bool(token) and process_token(pid) != token
