"""How long `fes` takes to start: the figures behind "help and a session start at once".

Times, over several runs each, as a user meets them (a new process every time):

* ``python -c pass`` — the interpreter alone, the floor under every figure;
* ``fes --help`` — to exit;
* ``fes protocol list`` — to exit (loads and validates every bundled protocol);
* ``fes simulate --duration 0.1`` — to its first line (the session is built: protocol,
  recording, record opened; the next thing is the first tick) and to exit (0.1 s of
  session at full speed, the record finished, the summary printed).

The load average is printed beside the figures: on a busy host every wall-clock figure
grows. The CPU time the process used (to its first line: its main thread's, from
``/proc/PID/schedstat``) grows much less, so it is printed beside them: the figure to
compare between runs on a shared machine.

Bytecode is cached, as an installed package has it (pip compiles on install): the
processes write and read it under a private ``PYTHONPYCACHEPREFIX``, whatever
``PYTHONDONTWRITEBYTECODE`` says (with it set, every project module is compiled from source
at every start, some 50-90 ms more on the figures below).

    .venv/bin/python benchmarks/startup.py [--runs 10] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FES = [sys.executable, "-m", "controller.cli"]
TARGET_S = 0.3


def with_bytecode(pycache: Path) -> dict[str, str]:
    """The environment of every measured process: bytecode written once, then read."""
    env = {name: value for name, value in os.environ.items()
           if name != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def to_exit(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds until the process has exited."""
    cpu_before_s = children_cpu_s()
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, children_cpu_s() - cpu_before_s


def main_thread_cpu_s(pid: int) -> float:
    """CPU time of a running process's main thread; nan where the system does not say."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return math.nan


def to_first_line(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds until the process prints its first line (then it is
    left to finish)."""
    started = time.perf_counter()
    with subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as process:
        assert process.stdout is not None
        process.stdout.readline()
        elapsed_s = time.perf_counter() - started
        cpu_s = main_thread_cpu_s(process.pid)
        process.stdout.read()
        if process.wait() != 0:
            raise RuntimeError(f"{' '.join(argv)} failed")
    return elapsed_s, cpu_s


def measure(name: str, runs: int,
            once: Callable[[], tuple[float, float]]) -> dict[str, float | str]:
    once()  # a first run warms the file cache and writes the bytecode
    figures = [once() for _ in range(runs)]
    times_s = sorted(wall_s for wall_s, _ in figures)
    p90_s = times_s[min(len(times_s) - 1, round(0.9 * (len(times_s) - 1)))]
    return {"what": name, "median_s": statistics.median(times_s), "p90_s": p90_s,
            "min_s": times_s[0], "cpu_median_s": statistics.median(cpu for _, cpu in figures),
            "runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        db = str(Path(scratch) / "startup.sqlite")
        env = with_bytecode(Path(scratch) / "pycache")
        simulate = [*FES, "simulate", "--duration", "0.1", "--db", db]
        rows = [
            measure("python -c pass", args.runs,
                    lambda: to_exit([sys.executable, "-c", "pass"], env)),
            measure("fes --help", args.runs, lambda: to_exit([*FES, "--help"], env)),
            measure("fes protocol list", args.runs,
                    lambda: to_exit([*FES, "protocol", "list"], env)),
            measure("fes simulate: first line", args.runs,
                    lambda: to_first_line(simulate, env)),
            measure("fes simulate --duration 0.1: exit", args.runs,
                    lambda: to_exit(simulate, env)),
        ]
    load = {"cores": os.cpu_count(), "load_1min_before": load_before,
            "load_1min_after": os.getloadavg()[0]}
    print(f"start-up over {args.runs} runs each, bytecode cached (target {TARGET_S} s; "
          f"{load['cores']} cores, load average {load_before:.1f} before, "
          f"{load['load_1min_after']:.1f} after)")
    print(f"{'':36} {'median':>8} {'p90':>8} {'min':>8} {'CPU median':>11}")
    for row in rows:
        print(f"{row['what']:36} {row['median_s']:8.3f} {row['p90_s']:8.3f} "
              f"{row['min_s']:8.3f} {row['cpu_median_s']:11.3f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "load": load}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
