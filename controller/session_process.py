"""A supervised session in its own process, for a front end that draws (the GUI).

Why a process and not a thread: Python runs one thread at a time, so a thread that draws
plots can hold the control loop off for tens of milliseconds (measured: ticks up to 75 ms
late while the live view drew under a real X server, enough to trip the 50 ms loop-late
watchdog). In a process of its own, the loop shares nothing with the drawing but a pipe.

The child process builds the session (simulator or devices), runs it through the
:class:`~controller.runner.SessionRunner`, forwards what every tick emits (samples,
events, phases, commands, cues, faults, notices) and the status lines to the parent in
batches, and applies the parent's commands. The parent replays what arrives to its own
observers (a live plot buffer, a test probe) on a reader thread.

Safety across the boundary:

* A stop is applied in the child by its command thread, which halts the supervisor at
  once even if the loop is stuck, and answers with the output it left. If no answer comes
  within :data:`STOP_ANSWER_S`, the parent kills the child: a simulated stimulator ends
  with it, a serial one stops when its host stops talking to it.
* If the parent goes away (the window crashed or was killed), the child's end of the pipe
  closes, and the child stops output and ends the session, so it is recorded.
* If the child goes away, the parent says so (:attr:`SessionProcess.lost`).
"""

from __future__ import annotations

import math
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from controller.clock import VirtualClock
from controller.detect.calibration import GaitCalibration
from controller.observe import SessionObserver
from controller.runner import SessionRunner, StatusCallback
from controller.types import Cue, DetectorEvent, Fault, Sample, SessionSummary, Unit
from protocols import ExerciseProtocol, Protocol

STOP_ANSWER_S = 0.3
"""How long the parent waits for the child to confirm a stop before killing it."""
FORWARD_EVERY_S = 0.02
"""Batching interval for what the ticks emit (one pipe write per batch, not per call)."""
START_TIMEOUT_S = 30.0

_FORWARDED = ("on_sample", "on_event", "on_phase", "on_unit", "on_cue", "on_command",
              "on_fault", "on_notice")


@dataclass(frozen=True)
class SessionSpec:
    """Everything the child needs to build the session (it must pickle)."""

    protocol: Protocol
    db_path: Path | None
    patient: str | None = None
    stimulator_url: str | None = None
    """None: the in-process simulator (the bundled walk for gait, the synthetic limb for
    an exercise)."""
    imu_url: str | None = None
    realtime: bool = True
    calibration: GaitCalibration | None = None
    time_ticks: bool = False
    """Measure how late each tick ran against its schedule (simulated, paced sessions);
    the figures come back as :attr:`SessionProcess.tick_late_ms`."""


@dataclass(frozen=True)
class StopAnswer:
    """The child's answer to an emergency stop, given once the stop is on its way."""

    source: str
    delivering: bool | None
    """Whether the simulated stimulator still gives a pulse (read from its model of the
    device); None for a real device, where the stop was written and nothing can be read
    back."""


class SessionStartError(RuntimeError):
    """The session could not be built (a device did not open, a bad recording): the
    message says why; nothing was left stimulating."""


class SessionProcess:
    """The :class:`SessionRunner` interface, with the loop in a child process."""

    def __init__(self, spec: SessionSpec, *, observers: Iterable[SessionObserver] = (),
                 on_status: StatusCallback | None = None) -> None:
        self.spec = spec
        self._observers = list(observers)
        self._on_status = on_status
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._started = threading.Event()
        self._done = threading.Event()
        self._answers: dict[str, threading.Event] = {}
        self.summary: SessionSummary | None = None
        self.error: str | None = None
        self.lost = False
        """The child ended without a summary (killed, crashed)."""
        self.last_stop: StopAnswer | None = None
        self.last_output_ma: dict[int, float] = {}
        self.tick_late_ms: list[float] = []
        self.killed_for: str | None = None

    # -- life -------------------------------------------------------------------------------

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the child and wait until its session runs; :class:`SessionStartError` if it
        could not be built."""
        if not (math.isfinite(timeout_s) and timeout_s > 0.0):
            raise ValueError(f"start timeout {timeout_s!r} s is not a finite time above 0")
        parent_end, child_end = socket.socketpair()
        with child_end:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "controller.session_process", str(child_end.fileno())],
                pass_fds=(child_end.fileno(),))
        self._conn = Connection(parent_end.detach())
        self._send("spec", self.spec)
        threading.Thread(target=self._read, name="session-reader", daemon=True).start()
        if not self._started.wait(timeout_s) and not self._done.is_set():
            self._kill("the session process did not start")
        if self.error is not None and self.summary is None:
            raise SessionStartError(self.error)

    @property
    def running(self) -> bool:
        return self._started.is_set() and not self._done.is_set()

    def wait(self, timeout_s: float | None = None) -> SessionSummary | None:
        """The summary once the session has ended (None if it has not, or if it was lost)."""
        self._done.wait(timeout_s)
        return self.summary

    @property
    def pid(self) -> int:
        assert self._process is not None, "start() first"
        return self._process.pid

    @property
    def ended(self) -> bool:
        return self._done.is_set()

    # -- commands ---------------------------------------------------------------------------

    def stop(self, source: str = "operator") -> None:
        self._send("stop", source)

    def emergency_stop(self, source: str, end_session: bool = True) -> StopAnswer | None:
        """Output off now; waits for the child to confirm (at most :data:`STOP_ANSWER_S`)
        and kills it if it does not."""
        if self._done.is_set():
            return None
        answered = self._answers["halted"] = threading.Event()
        self._send("emergency_stop", source, end_session)
        if not answered.wait(STOP_ANSWER_S):
            self._kill(f"{source}: the session process did not confirm the stop within "
                       f"{1000 * STOP_ANSWER_S:.0f} ms")
            return None
        return self.last_stop

    def pause(self) -> None:
        self._send("pause")

    def resume(self) -> None:
        self._send("resume")

    def nudge_all(self, steps: int) -> None:
        self._send("nudge_all", steps)  # judged by the child's supervisor, never truncated

    def reset_faults(self) -> None:
        self._send("reset_faults")

    def inject_sensor_fault(self, kind: str, after_s: float, duration_s: float) -> None:
        """Simulator only: the simulated sensor misbehaves (``silent``, ``frozen``...)
        ``after_s`` from now on the session clock, for ``duration_s``."""
        self._send("inject", kind, after_s, duration_s)

    # -- the parent's threads ---------------------------------------------------------------

    def _send(self, *message: Any) -> None:
        assert self._conn is not None, "start() first"
        with self._send_lock:
            try:
                self._conn.send(message)
            except (OSError, ValueError):  # the child is gone; the reader says so
                pass

    def _kill(self, why: str) -> None:
        self.killed_for = why
        assert self._process is not None
        self._process.kill()
        self._process.wait(5.0)

    def _read(self) -> None:
        assert self._conn is not None and self._process is not None
        try:
            while True:
                kind, *body = self._conn.recv()
                self._take(kind, body)
                if kind in ("summary", "failed"):
                    break
        except (EOFError, OSError):
            self.lost = self.summary is None and self.error is None
        finally:
            self._process.wait(5.0)
            self._done.set()
            self._started.set()
            for event in self._answers.values():
                event.set()

    def _take(self, kind: str, body: list[Any]) -> None:
        if kind == "emitted":
            for hook, args in body[0]:
                if hook == "on_command":
                    self.last_output_ma = dict(args[1])
                for observer in self._observers:
                    getattr(observer, hook)(*args)
        elif kind == "status":
            if self._on_status is not None:
                self._on_status(body[0])
        elif kind == "started":
            self._started.set()
        elif kind == "halted":
            self.last_stop = body[0]
            self._answers["halted"].set()
        elif kind == "summary":
            self.summary, self.tick_late_ms = body[0], body[1]
        elif kind == "failed":
            self.error = body[0]


# -- the child --------------------------------------------------------------------------------

class _Forwarder(SessionObserver):
    """Collects what the ticks emit; a thread sends it to the parent in batches, so a
    tick only appends to a list."""

    def __init__(self, send: Callable[..., None]) -> None:
        self._send = send
        self._batch: list[tuple[str, tuple[Any, ...]]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def _add(self, hook: str, *args: Any) -> None:
        with self._lock:
            self._batch.append((hook, args))

    def on_sample(self, sample: Sample) -> None:
        self._add("on_sample", sample)

    def on_event(self, event: DetectorEvent) -> None:
        self._add("on_event", event)

    def on_phase(self, t_s: float, phase: str) -> None:
        self._add("on_phase", t_s, phase)

    def on_unit(self, unit: Unit) -> None:
        self._add("on_unit", unit)

    def on_cue(self, cue: Cue) -> None:
        self._add("on_cue", cue)

    def on_command(self, t_s: float, amplitudes_ma: Mapping[int, float]) -> None:
        self._add("on_command", t_s, dict(amplitudes_ma))

    def on_fault(self, fault: Fault) -> None:
        self._add("on_fault", fault)

    def on_notice(self, t_s: float, kind: str, detail: str) -> None:
        self._add("on_notice", t_s, kind, detail)

    def flush(self) -> None:
        with self._lock:
            batch, self._batch = self._batch, []
        if batch:
            self._send("emitted", batch)

    def run(self) -> None:
        while not self._closed.wait(FORWARD_EVERY_S):
            self.flush()
        self.flush()

    def close(self) -> None:
        self._closed.set()


class _TickLateness(SessionObserver):
    """How late each tick ended against the wall time its paced clock scheduled it for."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self.late_ms: list[float] = []

    def on_tick(self, t_s: float) -> None:
        self.late_ms.append(1000.0 * (time.monotonic() - self._clock.wall_time_of(t_s)))


@dataclass
class _Built:
    runner: SessionRunner
    inject: Callable[[str, float, float], None] | None
    delivering: Callable[[], bool | None]
    timer: _TickLateness | None


def _build(spec: SessionSpec, forwarder: _Forwarder, on_status: StatusCallback) -> _Built:
    """The session the spec names, with the forwarder among its observers."""
    from controller.assembly import build_device_session, simulate_walk
    from controller.assembly.simulated import SimulatedRig, simulate_exercise
    from simulator.motion import MotionFault

    observers: list[SessionObserver] = [forwarder]
    if spec.stimulator_url is not None and spec.imu_url is not None:
        device = build_device_session(spec.protocol, spec.stimulator_url, spec.imu_url,
                                      spec.db_path or Path(":memory:"), patient=spec.patient,
                                      calibration=spec.calibration, observers=observers)
        return _Built(device.runner(on_status=on_status), None, lambda: None, None)
    rig: SimulatedRig
    if isinstance(spec.protocol, ExerciseProtocol):
        rig, _ = simulate_exercise(spec.protocol, spec.db_path, realtime=spec.realtime,
                                   patient=spec.patient, observers=observers)
    else:
        rig = simulate_walk(spec.protocol, spec.db_path, observers=observers,
                            patient=spec.patient, realtime=spec.realtime,
                            calibration=spec.calibration)
    timer = None
    if spec.time_ticks and spec.realtime:
        timer = _TickLateness(rig.clock)
        rig.session.observers.add(timer)

    def inject(kind: str, after_s: float, duration_s: float) -> None:
        rig.motion.inject(MotionFault(kind), rig.clock.now() + after_s, duration_s)

    return _Built(rig.runner(on_status=on_status), inject,
                  lambda: rig.stimulator.model.is_delivering, timer)


def _child_main(spec: SessionSpec, conn: Connection) -> None:
    """The session process: build, run, obey, report."""
    send_lock = threading.Lock()

    def send(*message: Any) -> None:
        with send_lock:
            try:
                conn.send(message)
            except (OSError, ValueError):
                pass  # the parent is gone; the command thread stops the session

    forwarder = _Forwarder(send)
    try:
        built = _build(spec, forwarder, lambda line: send("status", line))
    except Exception as exc:  # noqa: BLE001 - the parent shows the message
        send("failed", str(exc) or type(exc).__name__)
        return
    runner = built.runner
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: runner.emergency_stop("signal to session process"))
    threading.Thread(target=forwarder.run, name="forwarder", daemon=True).start()
    threading.Thread(target=_obey, args=(conn, built, send), name="commands",
                     daemon=True).start()
    summary: SessionSummary | None = None
    try:
        runner.start()
        send("started")
        while (summary := runner.wait(0.1)) is None:
            pass
    except Exception as exc:  # noqa: BLE001 - output is already off; the parent shows it
        send("failed", f"the session ended with an error after output was stopped: {exc}")
    finally:
        forwarder.close()
        forwarder.flush()
    if summary is not None:
        send("summary", summary, built.timer.late_ms if built.timer is not None else [])


def _obey(conn: Connection, built: _Built, send: Callable[..., None]) -> None:
    runner = built.runner
    while True:
        try:
            kind, *args = conn.recv()
        except (EOFError, OSError):
            runner.emergency_stop("the window's process went away")
            return
        if kind == "emergency_stop":
            runner.emergency_stop(args[0], args[1])
            send("halted", StopAnswer(args[0], built.delivering()))
        elif kind == "inject" and built.inject is not None:
            built.inject(*args)
        elif kind in ("stop", "pause", "resume", "nudge_all", "reset_faults"):
            getattr(runner, kind)(*args)


def main() -> None:
    """``python -m controller.session_process FD``: the child, on the inherited socket."""
    conn = Connection(int(sys.argv[1]))
    _, spec = conn.recv()
    _child_main(spec, conn)


if __name__ == "__main__":
    # Through the imported module, so what the child pickles names
    # controller.session_process, not __main__.
    from controller.session_process import main as imported_main
    imported_main()
