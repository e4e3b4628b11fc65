"""What the fault, SIGKILL and soak benchmarks share: ``fes run`` as a child process on
``fes-sim``'s pseudo-terminals, watched from outside as a user and the device would see it.

* The output is what the simulated stimulator delivered (its ``--delivered-log``, read
  incrementally), never what the controller believes it sent.
* The controller's standard input is a pseudo-terminal of our own, so its single-key
  front end (``controller.terminal_keys``) is live and a benchmark can press ``r`` (reset)
  or space (stop) as an operator would.
* Times: ``fes-sim`` stamps with ``time.monotonic()`` and so does a serial-IMU session's
  clock, so the record's fault times, the delivered log and this process's clock are one
  clock (CLOCK_MONOTONIC is shared by every process on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from controller.devices.rehastim2 import HANDSHAKE_TIMEOUT_S
from tests.sim_process import SimProcess, wait_for

T = TypeVar("T")
TICK_S = 0.01
"""The control loop's tick on serial devices (``controller.assembly.hardware.TICK_S``)."""
SIM_WATCHDOG_S = 1.0
"""``fes-sim``'s device watchdog: what stops the output when the controller is gone."""
QUIET_S = 1.5
"""After a fault nobody injected, how long to wait before taking a moment to inject at."""
NICE = 0
"""Niceness of the processes the rig starts (``--nice``; negative needs root): on a
machine shared with other work, the rig's controller and simulator can be put ahead of
it, and the benchmarks print the value beside their figures."""
WALK = ROOT / "simulator" / "data" / "walk1_2x20m_foot_imu.csv"
SIM_ARGS = ("--walk", str(WALK), "--imu-rate", "100", "--init-interval", "0.05",
            "--watchdog", str(SIM_WATCHDOG_S))


def wait_until(condition: Callable[[], T | None], timeout_s: float,
               poll_s: float = 0.005) -> T | None:
    """The tests' :func:`wait_for`, with None instead of an error after ``timeout_s``."""
    try:
        return wait_for(condition, timeout_s, poll_s)
    except TimeoutError:
        return None


@dataclass(frozen=True)
class Change:
    """One change of what the simulated stimulator delivers on a channel."""

    t_s: float
    current_ma: int
    reason: str


@dataclass
class DeliveredLog:
    """``fes-sim``'s delivered log for channel 1, read on from where we left off (a soak's
    log grows for an hour; re-reading it every poll would cost more than the session)."""

    path: Path
    channel: int = 1
    changes: list[Change] = field(default_factory=list)
    _offset: int = 0
    _partial: str = ""

    def poll(self) -> list[Change]:
        if not self.path.exists():
            return []
        with self.path.open() as stream:
            stream.seek(self._offset)
            text = stream.read()
            self._offset = stream.tell()
        *lines, self._partial = (self._partial + text).split("\n")
        new = [Change(e["t_s"], int(e["current_ma"]), e["reason"])
               for e in map(json.loads, lines) if e["channel"] == self.channel]
        self.changes.extend(new)
        return new

    def output_ma(self) -> int:
        self.poll()
        return self.changes[-1].current_ma if self.changes else 0

    def since(self, t_s: float) -> list[Change]:
        self.poll()
        return [c for c in self.changes if c.t_s >= t_s]

    def output_at(self, t_s: float) -> int:
        """What was delivered at ``t_s`` (0 before the first change)."""
        before = [c for c in self.changes if c.t_s <= t_s]
        return before[-1].current_ma if before else 0


class Simulator:
    """``fes-sim`` as a child process; fault commands on its stdin (through the tests'
    :class:`~tests.sim_process.SimProcess`, which waits for each answer)."""

    def __init__(self, folder: Path, name: str = "sim", *args: str) -> None:
        self.log = DeliveredLog(folder / f"{name}-delivered.jsonl")
        self.process = subprocess.Popen(
            [*_niced(), sys.executable, "-m", "simulator", "--delivered-log",
             str(self.log.path), *SIM_ARGS, *args], cwd=ROOT, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._control = SimProcess(self.process, self.log.path)
        self.stimulator = self._control.stimulator
        self.imu = self._control.imu

    def command(self, text: str) -> None:
        """Send a fault command and wait until the simulator says it is in force."""
        self._control.command(text)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


def _niced() -> list[str]:
    """The command prefix that runs a child at the rig's niceness (see :data:`NICE`);
    ``nice`` execs the command, so the child keeps its process id."""
    return ["nice", "-n", str(NICE)] if NICE else []


def fes_run_command(stimulator: str, imu: str, protocol: Path, db: Path,
                    duration_s: float) -> list[str]:
    return [sys.executable, "-m", "controller.cli", "run",
            "--stimulator", f"serial://{stimulator}", "--imu", f"serial://{imu}",
            "--protocol", str(protocol), "--db", str(db), "--duration", f"{duration_s:g}"]


class Controller:
    """``fes run`` with a pseudo-terminal as its keyboard and its output in a file."""

    def __init__(self, command: Sequence[str], output: Path) -> None:
        self._keyboard, terminal = pty.openpty()
        self._output: IO[bytes] = output.open("wb")
        self.output_path = output
        self.process = subprocess.Popen([*_niced(), *command], cwd=ROOT, stdin=terminal,
                                        stdout=self._output, stderr=subprocess.STDOUT)
        os.close(terminal)
        self.started_s = time.monotonic()

    @property
    def pid(self) -> int:
        return self.process.pid

    def press(self, key: str) -> None:
        os.write(self._keyboard, key.encode())

    def signal(self, signum: signal.Signals) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def finish(self, timeout_s: float = 15.0) -> int:
        """Stop it as an operator would (space), then harder; its exit code."""
        if self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.press(" ")
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if not self._output.closed:
            self._output.close()
        try:
            os.close(self._keyboard)
        except OSError:
            pass

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """A read-only query on a record another process may be writing; [] until it exists."""
    if not db.exists():
        return []
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2.0)) as con:
            return list(con.execute(sql, params))
    except sqlite3.OperationalError:
        return []


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process from /proc (None once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def machine_load() -> str:
    """The load average beside every figure (other processes share this machine)."""
    one, five, _ = os.getloadavg()
    niced = f", rig at nice {NICE}" if NICE else ""
    return f"load {one:.2f} / {five:.2f} (1 / 5 min) on {os.cpu_count()} cores{niced}"


def reset_answer(db: Path, pressed_s: float,
                 timeout_s: float = HANDSHAKE_TIMEOUT_S + 1.0) -> str:
    """What the record says a reset pressed at ``pressed_s`` did: its notice, its refusal,
    or neither within ``timeout_s`` (a reset with nothing latched leaves no notice, and
    one stuck in the loop has not answered yet). The default outlasts a reset that waits
    the whole handshake time for a stimulator that does not answer."""
    found = wait_until(lambda: query(
        db, "SELECT kind FROM notices WHERE t_s >= ? AND kind IN ('reset', 'reset_refused')"
            " ORDER BY t_s", (pressed_s,)), timeout_s=timeout_s)
    if not found:
        return "no notice"
    return "accepted" if found[0][0] == "reset" else "refused"


def try_reset(controller: Controller, db: Path, patience_s: float) -> str:
    """Press ``r`` once a second until a reset is not refused or ``patience_s`` is over;
    the answer, with how long it took when that was more than one press."""
    started_s = time.monotonic()
    while True:
        pressed_s = time.monotonic()
        controller.press("r")
        answer = reset_answer(db, pressed_s)
        if answer != "refused" or time.monotonic() - started_s >= patience_s:
            waited_s = pressed_s - started_s
            return f"{answer} after {waited_s:.0f} s" if waited_s >= 1.0 else answer
        time.sleep(1.0)


def wait_resetting(condition: Callable[[], T | None], controller: Controller, db: Path,
                   timeout_s: float, poll_s: float = 0.002,
                   quiet_s: float = QUIET_S) -> tuple[T | None, int]:
    """Wait for ``condition`` while pressing ``r`` after any fault that latches meanwhile
    (a loaded machine's late loop before the moment we wait for), as an operator would,
    and take the condition only ``quiet_s`` after the last such fault, so what follows is
    not blamed on it; also how many such faults there were."""
    seen_s, faults = 0.0, 0
    next_check_s = time.monotonic()

    def ready() -> T | None:
        nonlocal seen_s, faults, next_check_s
        if time.monotonic() >= next_check_s:
            next_check_s = time.monotonic() + 0.25
            found = query(db, "SELECT t_s FROM faults WHERE t_s > ?", (seen_s,))
            if found:
                faults += len(found)
                seen_s = max(t_s for (t_s,) in found)
                controller.press("r")
        if faults and time.monotonic() - seen_s < quiet_s:
            return None
        return condition()

    return wait_until(ready, timeout_s, poll_s), faults


def rig_options(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The options every rig benchmark has (``--json``, ``--nice``), parsed and applied;
    and SIGTERM ends the benchmark through its ``finally`` blocks, so no ``fes-sim`` or
    controller it started is left running."""
    global NICE
    parser.add_argument("--json", type=Path, metavar="FILE")
    parser.add_argument("--nice", type=int, default=0,
                        help="niceness of fes-sim and fes run (negative: ahead of other work; "
                             "needs root)")
    args = parser.parse_args()
    NICE = args.nice

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, leave)
    return args
