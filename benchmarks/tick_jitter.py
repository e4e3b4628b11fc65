"""Tick lateness of real-time sessions while other processes load the CPU.

Why: a paced session whose loop wakes up late (the OS gave the CPU to someone else, a
garbage collection ran in the tick) must not be mistaken for a stuck loop, or a loaded
machine ends sessions for nothing; a loop that is really stuck must still be stopped
within the loop-late limit (tests/test_end_to_end.py proves that part).

Each session is a fresh process (imports, record, start-up garbage included) with its
record written, while ``--load`` processes spin on the CPU: ``--via simulate`` a paced
simulated walk as ``fes simulate --realtime`` runs it; ``--via run`` a session on the
serial drivers against its own ``fes-sim`` on pseudo-terminals, as ``fes run`` runs it.
Printed: the wall time between two ticks (what the loop watchdogs judge; the tick is
10 ms), how late ticks ran against their schedule (simulate), and how many sessions
latched ``loop_late`` (at all, and as their first fault: a sensor fault's stop that
waits for a starved simulator's answer is followed by a late loop). Where permitted (root, CAP_SYS_NICE) the session's threads run at
``controller.runner.LOOP_NICE``, and so does ``fes-sim``, which stands in for devices no
process on this machine can starve; ``--no-priority`` leaves both as they are.

    python benchmarks/tick_jitter.py [--sessions 20] [--seconds 4] [--load 3]
                                     [--parallel 1] [--via simulate|run] [--no-priority]
                                     [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.observe import SessionObserver

BUSY = "while True: pass"
LOOP_LATE_MS = 50.0


class _Timer(SessionObserver):
    """Wall time at the end of every tick, and its lateness if the clock is paced."""

    def __init__(self, wall_time_of: Any = None) -> None:
        self.wall_s: list[float] = []
        self.late_ms: list[float] = []
        self._wall_time_of = wall_time_of

    def on_tick(self, t_s: float) -> None:
        now = time.monotonic()
        self.wall_s.append(now)
        if self._wall_time_of is not None:
            self.late_ms.append(1000.0 * (now - self._wall_time_of(t_s)))


def _child(via: str, db: Path, seconds: float, raise_priority: bool) -> None:
    """One session in this process; prints its figures as one JSON line."""
    from controller.assembly import build_device_session, build_simulated_session
    from controller.assembly.simulated import recorded_walk
    from controller.runner import LOOP_NICE, SessionRunner
    from protocols import load_protocol
    from protocols.loader import LIBRARY
    from simulator import BUNDLED_WALK
    from tests.sim_process import running_simulator

    protocol = load_protocol(LIBRARY / "peroneal_gait_gyro.toml")
    with ExitStack() as stack:
        runner: SessionRunner
        if via == "simulate":
            rig = build_simulated_session(protocol, recorded_walk(BUNDLED_WALK, protocol.leg),
                                          db, source="tick_jitter", duration_s=seconds,
                                          realtime=True)
            timer = _Timer(rig.clock.wall_time_of)
            rig.session.observers.add(timer)
            runner = rig.runner() if raise_priority else SessionRunner(
                rig.session, watchdog_s=rig.watchdog_s, raise_priority=False)
            start_s = rig.clock.now()
        else:
            sim = stack.enter_context(running_simulator(
                db.parent, "--walk", str(BUNDLED_WALK), "--imu-rate", "100"))
            if raise_priority:  # the simulated devices stand in for hardware, not starved
                for tid in os.listdir(f"/proc/{sim.process.pid}/task"):
                    os.setpriority(os.PRIO_PROCESS, int(tid), LOOP_NICE)
            device = build_device_session(protocol, f"serial://{sim.stimulator}",
                                          f"serial://{sim.imu}", db, duration_s=seconds)
            timer = _Timer()
            device.session.observers.add(timer)
            runner = device.runner() if raise_priority else SessionRunner(
                device.session, watchdog_s=device.watchdog_s, raise_priority=False)
            start_s = device.start_s
        summary = runner.run()
    gaps_ms = [1000.0 * (b - a) for a, b in zip(timer.wall_s, timer.wall_s[1:], strict=False)]
    print(json.dumps({"gap_ms": gaps_ms, "late_ms": timer.late_ms,
                      "faults": [f["kind"] for f in summary.faults],
                      "details": [f"{f['kind']} at {cast(float, f['t_s']) - start_s:.2f} s: {f['detail']}"
                                  for f in summary.faults],
                      "status": summary.status}))


def _one_session(index: int, folder: Path, seconds: float, via: str,
                 raise_priority: bool) -> dict[str, Any]:
    own = folder / f"session{index}"
    own.mkdir()
    done = subprocess.run([sys.executable, __file__, "--child", via, str(own / "record.sqlite"),
                           str(seconds), str(raise_priority)], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=seconds + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"session {index} failed: {done.stderr.strip()[-600:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each session")
    parser.add_argument("--load", type=int, default=3, help="busy processes meanwhile")
    parser.add_argument("--parallel", type=int, default=1, help="sessions at once")
    parser.add_argument("--via", choices=("simulate", "run"), default="simulate")
    parser.add_argument("--no-priority", action="store_true",
                        help="do not raise the loop's priority even where permitted")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], Path(args.child[1]), float(args.child[2]),
               args.child[3] == "True")
        return 0
    if args.sessions < 1 or args.load < 0 or args.parallel < 1 or not args.seconds > 0:
        parser.error("--sessions and --parallel >= 1, --load >= 0, --seconds > 0")
    load = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.load)]
    started_s = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as folder, \
                ThreadPoolExecutor(args.parallel) as pool:
            results = list(pool.map(
                lambda i: _one_session(i, Path(folder), args.seconds, args.via,
                                       not args.no_priority),
                range(args.sessions)))
    finally:
        for process in load:
            process.kill()
            process.wait()
    gaps = [ms for r in results for ms in r["gap_ms"]]
    late = [ms for r in results for ms in r["late_ms"]]
    figures: dict[str, Any] = {
        "sessions": args.sessions, "seconds": args.seconds, "via": args.via,
        "load_processes": args.load, "parallel": args.parallel, "cores": os.cpu_count(),
        "priority_raised": not args.no_priority and os.geteuid() == 0,
        "loadavg_1min_after": round(os.getloadavg()[0], 2),
        "wall_s": round(time.monotonic() - started_s, 1),
        "loop_late_sessions": sum("loop_late" in r["faults"] for r in results),
        "loop_late_first_sessions": sum(r["faults"][:1] == ["loop_late"] for r in results),
        "other_faults": sorted({k for r in results for k in r["faults"] if k != "loop_late"}),
        "ticks": len(gaps) + len(results),
        "gap_median_ms": round(statistics.median(gaps), 2),
        "gap_p99_ms": round(_percentile(gaps, 0.99), 2),
        "gap_max_ms": round(max(gaps), 2),
        "gaps_over_loop_late": sum(ms > LOOP_LATE_MS for ms in gaps),
    }
    if late:
        figures |= {"late_median_ms": round(statistics.median(late), 2),
                    "late_p99_ms": round(_percentile(late, 0.99), 2),
                    "late_max_ms": round(max(late), 2)}
    for line in sorted({d for r in results for d in r["details"]}):
        print(f"  fault: {line}")
    print(f"tick jitter: {args.sessions} sessions of {args.seconds:g} s via {args.via}, "
          f"{args.parallel} at once, {args.load} busy processes on {os.cpu_count()} cores")
    for key, value in figures.items():
        print(f"  {key:24} {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
