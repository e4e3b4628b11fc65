"""Run ``fes-sim`` as a child process for tests and benchmarks, and always clean it up."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 5.0


class SimProcess:
    def __init__(self, process: subprocess.Popen[str], log: Path) -> None:
        self.process = process
        self.delivered_log = log
        self._selector = selectors.DefaultSelector()
        assert process.stdout is not None
        self._selector.register(process.stdout, selectors.EVENT_READ)
        info = self.next_line()
        self.stimulator: str = info["stimulator"]
        self.imu: str = info["imu"]

    def next_line(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        assert self.process.stdout is not None
        if not self._selector.select(timeout_s):
            raise TimeoutError("fes-sim said nothing")
        line = self.process.stdout.readline()
        if not line:
            raise EOFError(f"fes-sim exited with {self.process.wait(1.0)}")
        record: dict[str, Any] = json.loads(line)
        return record

    def command(self, text: str) -> None:
        """Send a control command and wait until the simulator has carried it out."""
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        answer = self.next_line()
        if answer != {"ok": text}:
            raise AssertionError(f"fes-sim answered {answer} to {text!r}")

    def delivered(self) -> list[dict[str, Any]]:
        if not self.delivered_log.exists():
            return []
        return [json.loads(line) for line in self.delivered_log.read_text().splitlines()]

    def output_ma(self, channel: int) -> int:
        """The current the simulated stimulator is delivering on ``channel`` now."""
        entries = [e for e in self.delivered() if e["channel"] == channel]
        return int(entries[-1]["current_ma"]) if entries else 0


def wait_for(condition: Callable[[], T], timeout_s: float = DEFAULT_TIMEOUT_S,
             poll_s: float = 0.01) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout_s} s")
        time.sleep(poll_s)


@contextmanager
def running_simulator(folder: Path, *args: str) -> Iterator[SimProcess]:
    log = folder / "delivered.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--delivered-log", str(log), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield SimProcess(process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
