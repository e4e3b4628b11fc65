"""How long `fes` takes to start: the figures behind "help and a session start at once".

Times, over several runs each, as a user meets them (a new process every time):

* ``python -c pass`` — the interpreter alone, the floor under every figure;
* ``fes --help`` — to exit;
* ``fes protocol list`` — to exit (loads and validates every bundled protocol);
* ``fes simulate --duration 0.1`` — to its first line (the session is built: protocol,
  recording, record opened; the next thing is the first tick) and to exit (0.1 s of
  session at full speed, the record finished, the summary printed).

The load average is printed beside the figures: on a busy host every figure grows.

Bytecode is cached, as an installed package has it (pip compiles on install): the
processes write and read it under a private ``PYTHONPYCACHEPREFIX``, whatever
``PYTHONDONTWRITEBYTECODE`` says (with it set, every project module is compiled from source
at every start, some 50-90 ms more on the figures below).

    .venv/bin/python benchmarks/startup.py [--runs 10] [--json FILE]
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


def to_exit(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def to_first_line(argv: list[str], env: dict[str, str]) -> float:
    """Seconds until the process prints its first line (then it is left to finish)."""
    started = time.perf_counter()
    with subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as process:
        assert process.stdout is not None
        process.stdout.readline()
        elapsed = time.perf_counter() - started
        process.stdout.read()
        if process.wait() != 0:
            raise RuntimeError(f"{' '.join(argv)} failed")
    return elapsed


def measure(name: str, runs: int, once: Callable[[], float]) -> dict[str, float | str]:
    once()  # a first run warms the file cache and writes the bytecode
    times_s = sorted(once() for _ in range(runs))
    p90_s = times_s[min(len(times_s) - 1, round(0.9 * (len(times_s) - 1)))]
    return {"what": name, "median_s": statistics.median(times_s), "p90_s": p90_s,
            "min_s": times_s[0], "runs": runs}


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
    print(f"{'':36} {'median':>8} {'p90':>8} {'min':>8}")
    for row in rows:
        print(f"{row['what']:36} {row['median_s']:8.3f} {row['p90_s']:8.3f} "
              f"{row['min_s']:8.3f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "load": load}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
