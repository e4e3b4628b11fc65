"""``fes-sim`` / ``python -m simulator``: a RehaStim 2 and a WitMotion IMU on pseudo-terminals.

On start it prints one JSON line with the two port paths, e.g.
``{"stimulator": "/dev/pts/5", "imu": "/dev/pts/6", "pid": 1234}``; point the controller at
them (``serial:///dev/pts/5``). It then streams the walk on the IMU port at the IMU's rate,
answers ScienceMode 2 on the stimulator port, writes every change of delivered output to
``--delivered-log`` (JSON lines, flushed at once), and takes fault commands on stdin (see
:mod:`simulator.pty_control`), answering each with a JSON line on stdout.

One thread, one ``selectors`` loop: it wakes for input on either port, for a command, or
for the next thing due (an IMU sample, a held-back answer, a device timer), never later
than ``MAX_WAIT_S``. Times are ``time.monotonic()``, which on Linux is one clock for all
processes, so a trace (``--trace``) can be set against the controller's.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import selectors
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import TextIO

from controller.devices import sciencemode as sm
from controller.devices.sciencemode_host import check_timing
from simulator import BUNDLED_WALK
from simulator.pty_control import CommandError, Rig, apply, split_schedule
from simulator.pty_imu import ImuStream, load_walk
from simulator.pty_port import FORGET_S, PtyPort
from simulator.pty_rehastim import INIT_INTERVAL_S, RehaStimDevice
from simulator.rehastim_model import RehaStimModel

MAX_WAIT_S = 0.005
DEVICE_TIMER_MAX_S = 60.0
SHARED_WALK = Path(__file__).resolve().parents[2] / "shared" / "data" / "gait" / \
    "walk1_2x20m_foot_imu.csv"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fes-sim", description="Simulated RehaStim 2 and WitMotion IMU on pseudo-terminals.")
    parser.add_argument("--walk", type=Path,
                        help="recorded walk (*_foot_imu.csv); default: walk 1 of the shared "
                             "gait data, else the bundled copy")
    parser.add_argument("--foot", default="left", choices=["left", "right"])
    parser.add_argument("--imu-rate", type=float, default=100.0, metavar="HZ")
    parser.add_argument("--watchdog", type=_seconds, default=1.0, metavar="SECONDS",
                        help="the stimulator stops output after this long without a packet")
    parser.add_argument("--init-interval", type=_seconds, default=INIT_INTERVAL_S,
                        metavar="SECONDS", help="repeat Init this often until answered")
    parser.add_argument("--delivered-log", type=Path, metavar="FILE.jsonl",
                        help="append every change of delivered output here")
    parser.add_argument("--trace", type=Path, metavar="FILE.jsonl",
                        help="log each IMU sample written and each command heard, with times")
    parser.add_argument("--fault", action="append", default=[], metavar="COMMAND[@SECONDS]",
                        help="inject a fault at start or after SECONDS (see simulator.pty_control)")
    return parser


def _seconds(text: str) -> float:
    """A device timer: a finite number of seconds in (0, 60]; inf or NaN would switch the
    device's watchdog off, which no real device does."""
    try:
        return check_timing("a device timer", float(text), DEVICE_TIMER_MAX_S)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from exc


def _emit(stream: TextIO, record: dict[str, object]) -> None:
    stream.write(json.dumps(record) + "\n")
    stream.flush()


class Simulator:
    def __init__(self, args: argparse.Namespace) -> None:
        now = time.monotonic()
        walk_path = args.walk or (SHARED_WALK if SHARED_WALK.exists() else BUNDLED_WALK)
        self.trace = args.trace.open("a") if args.trace else None
        self.log = args.delivered_log.open("a") if args.delivered_log else None
        self.model = RehaStimModel(watchdog_s=args.watchdog)
        self.rig = Rig(
            stimulator=RehaStimDevice(self.model, args.init_interval,
                                      on_command=self._trace_command if self.trace else None),
            stimulator_port=PtyPort(),
            imu=ImuStream(load_walk(walk_path, args.foot, args.imu_rate), args.imu_rate, now,
                          on_sample=self._trace_sample if self.trace else None),
            imu_port=PtyPort(),
        )
        self.scheduled: list[tuple[float, str]] = []
        for text in args.fault:
            command, delay_s = split_schedule(text)
            heapq.heappush(self.scheduled, (now + delay_s, command))
        self._logged = 0
        self._pending_input = b""
        self.running = True

    def run(self) -> None:
        selector = selectors.DefaultSelector()
        ports = {"stim": self.rig.stimulator_port, "imu": self.rig.imu_port}
        registered: dict[str, int] = {}
        for name, port in ports.items():
            if port.fd is not None:
                registered[name] = port.fd
                selector.register(port.fd, selectors.EVENT_READ, name)
        try:
            selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "control")
        except (OSError, ValueError):
            pass  # stdin is a file or closed: no run-time control, --fault still works
        forget_at_s = time.monotonic()
        while self.running:
            now = time.monotonic()
            wait = min(self.rig.imu.next_due_s(), self.rig.stimulator.next_due_s(),
                       self.scheduled[0][0] if self.scheduled else now + MAX_WAIT_S) - now
            for key, _ in selector.select(max(0.0, min(wait, MAX_WAIT_S))):
                now = time.monotonic()
                if key.data == "control":
                    self._control(selector)
                elif key.data == "stim":
                    self.rig.stimulator.receive(self.rig.stimulator_port.read(), now)
                else:
                    self.rig.imu.receive(self.rig.imu_port.read(), now)
            now = time.monotonic()
            while self.scheduled and self.scheduled[0][0] <= now:
                self._command(heapq.heappop(self.scheduled)[1], now)
            self.rig.imu_port.write(self.rig.imu.due(now))
            answers = self.rig.stimulator.outgoing(now)
            self._write_delivered()  # before the answers: an acknowledged change is logged
            self.rig.stimulator_port.write(answers)
            for name, port in ports.items():
                if not port.open and name in registered:
                    selector.unregister(registered.pop(name))
            if now >= forget_at_s:
                forget_at_s = now + FORGET_S
                for port in ports.values():
                    port.forget_settings()
        self.close()

    def close(self) -> None:
        self.model.stop(time.monotonic(), "simulator shut down")
        self._write_delivered()
        for port in (self.rig.stimulator_port, self.rig.imu_port):
            port.vanish()
        for stream in (self.trace, self.log):
            if stream is not None:
                stream.close()

    def _control(self, selector: selectors.BaseSelector) -> None:
        """Read what stdin has (unbuffered: a buffered reader would hide queued lines from
        the selector) and carry out each complete line."""
        chunk = os.read(sys.stdin.fileno(), 4096)
        if not chunk:
            selector.unregister(sys.stdin.fileno())
            return
        self._pending_input += chunk
        *lines, rest = self._pending_input.split(b"\n")
        self._pending_input = rest
        for line in lines:
            if line.strip():
                self._command(line.decode(errors="replace").strip(), time.monotonic())

    def _command(self, text: str, now_s: float) -> None:
        try:
            self.running = apply(self.rig, text, now_s)
        except CommandError as exc:
            _emit(sys.stdout, {"error": str(exc)})
        else:
            _emit(sys.stdout, {"ok": text})

    def _write_delivered(self) -> None:
        delivered = self.model.delivered
        if self.log is not None and delivered.total > self._logged:
            for record in delivered.since(self._logged):
                self.log.write(json.dumps(asdict(record)) + "\n")
            self.log.flush()
        self._logged = delivered.total

    def _trace_sample(self, t_s: float, number: int) -> None:
        assert self.trace is not None
        self.trace.write(json.dumps({"t_s": t_s, "sample": number}) + "\n")

    def _trace_command(self, t_s: float, message: sm.Message) -> None:
        assert self.trace is not None
        if isinstance(message, sm.StartChannelListMode):
            currents = [pulse.current_ma for pulse in message.pulses]
            self.trace.write(json.dumps({"t_s": t_s, "currents_ma": currents}) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        simulator = Simulator(args)
    except (OSError, ValueError, CommandError) as exc:
        print(f"fes-sim: {exc}", file=sys.stderr)
        return 2

    def stop(signum: int, frame: FrameType | None) -> None:
        simulator.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _emit(sys.stdout, {"stimulator": simulator.rig.stimulator_port.path,
                       "imu": simulator.rig.imu_port.path, "pid": os.getpid()})
    simulator.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
