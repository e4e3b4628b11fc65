"""``fes run`` killed with SIGKILL at random moments mid-burst: who stops the output, and
what the record keeps.

Why: a process killed outright runs no exit path, so nothing it does can stop the
stimulator; the device's own watchdog must (``fes-sim`` models the RehaStim 2's, 1.0 s
without a packet), and the record, written as the session runs, must keep all but its
last moments and show the session as ``interrupted``, not as still running or completed.

Each trial: a fresh ``fes-sim`` and ``fes run`` (real serial drivers, timed 1.35 s bursts
every 3 s, record written); after 3-8 s of stimulation (random), at a random moment
inside a burst, SIGKILL. A fault that latches before the kill (a late loop on a loaded
machine) is reset with ``r``, as an operator would. Printed per trial: output at the kill, time from the kill to
zero at the simulated stimulator and what stopped it, how much of the session's end the
record lost (kill time minus its newest sample; one clock, CLOCK_MONOTONIC), how old its
newest command was at the kill (commands are recorded when the output changes, so this
is the loss only when a change was due), the status ``fes sessions`` shows, and SQLite's
integrity check.

    python benchmarks/sigkill.py [--trials 10] [--seed 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fault_matrix import GAIT_PROTOCOL
from pty_rig import (
    ROOT,
    SIM_WATCHDOG_S,
    TICK_S,
    Controller,
    Simulator,
    fes_run_command,
    machine_load,
    query,
    rig_options,
    wait_resetting,
    wait_until,
)

SESSION_S = 120.0
BURST_S = 1.35
"""A burst of the timed protocol (``fault_matrix.GAIT_PROTOCOL``), ramp-up included."""


@dataclass
class Trial:
    stimulating_s: float
    """How long the session had been stimulating when it was killed."""
    output_at_kill_ma: int
    kill_to_zero_ms: float | None
    stopped_by: str
    samples_lost_s: float | None
    newest_command_age_s: float | None
    status: str
    integrity: str


def _status(db: Path) -> str:
    """The session's status as ``fes sessions`` shows it to a user."""
    done = subprocess.run([sys.executable, "-m", "controller.cli", "sessions", "--db", str(db)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "COLUMNS": "400"})
    for status in ("interrupted", "running", "completed", "faulted", "stopped", "failed"):
        if status in done.stdout:
            return status
    return f"? (exit {done.returncode}: {(done.stdout + done.stderr).strip()[-200:]})"


def trial(folder: Path, protocol: Path, rng: random.Random) -> Trial:
    db = folder / "record.sqlite"
    sim = Simulator(folder)
    controller = Controller(fes_run_command(sim.stimulator, sim.imu, protocol, db, SESSION_S),
                            folder / "controller.txt")
    try:
        first, _ = wait_resetting(lambda: [c for c in sim.log.since(0.0) if c.current_ma],
                                  controller, db, 30.0)
        if not first:
            raise RuntimeError(f"no stimulation; controller said {controller.output()[-300:]}")
        wait_resetting(lambda: None, controller, db, rng.uniform(3.0, 8.0))
        wait_resetting(lambda: sim.log.output_ma() == 0, controller, db, 10.0)
        wait_resetting(lambda: sim.log.output_ma() > 0, controller, db, 10.0)
        time.sleep(rng.uniform(0.0, BURST_S - 0.1))  # from the burst's start to its end
        killed_s = time.monotonic()
        controller.process.kill()
        controller.process.wait()
        sim.log.poll()
        on_ma = sim.log.output_at(killed_s)
        zero = wait_until(lambda: [c for c in sim.log.since(killed_s) if c.current_ma == 0],
                          SIM_WATCHDOG_S + 2.0)
    finally:
        controller.close()
        sim.close()
    newest_sample = query(db, "SELECT max(t_s) FROM samples")[0][0]
    newest_command = query(db, "SELECT max(t_s) FROM commands")[0][0]
    return Trial(
        killed_s - first[0].t_s, on_ma,
        1000 * (zero[0].t_s - killed_s) if zero else None,
        zero[0].reason if zero else ("was off" if not on_ma else "still on"),
        None if newest_sample is None else killed_s - newest_sample,
        None if newest_command is None else killed_s - newest_command,
        _status(db), query(db, "PRAGMA integrity_check")[0][0])


def _range(values: list[float], scale: float, unit: str) -> str:
    if not values:
        return "—"
    return (f"{scale * min(values):.0f}–{scale * max(values):.0f} {unit} "
            f"(median {scale * statistics.median(values):.0f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = rig_options(parser)
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    rng = random.Random(args.seed)
    console = Console(width=160)
    load_before = machine_load()
    trials: list[Trial] = []
    with tempfile.TemporaryDirectory(prefix="fes-sigkill-") as tmp:
        protocol = Path(tmp) / "gait.toml"
        protocol.write_text(GAIT_PROTOCOL)
        for n in range(args.trials):
            folder = Path(tmp) / f"trial{n}"
            folder.mkdir()
            trials.append(trial(folder, protocol, rng))
            console.print(f"trial {n + 1}: {asdict(trials[-1])}", highlight=False)
    table = Table("trial", "stimulating s", "mA at kill", "kill→0 ms", "stopped by",
                  "samples lost s", "last command s", "status", "integrity",
                  title=f"SIGKILL mid-burst ({load_before} before, {machine_load()} after)")
    for n, t in enumerate(trials, 1):
        table.add_row(str(n), f"{t.stimulating_s:.1f}", str(t.output_at_kill_ma),
                      "—" if t.kill_to_zero_ms is None else f"{t.kill_to_zero_ms:.0f}",
                      t.stopped_by,
                      *("—" if v is None else f"{v:.2f}"
                        for v in (t.samples_lost_s, t.newest_command_age_s)), t.status, t.integrity)
    console.print(table)
    to_zero = [t.kill_to_zero_ms / 1000 for t in trials if t.kill_to_zero_ms is not None]
    lost = [t.samples_lost_s for t in trials if t.samples_lost_s is not None]
    ok = (all(t.stopped_by != "still on" for t in trials)
          and max(to_zero, default=0.0) <= SIM_WATCHDOG_S + TICK_S
          and all(t.status == "interrupted" and t.integrity == "ok" for t in trials))
    console.print(f"kill → zero at the simulated stimulator: {_range(to_zero, 1000, 'ms')} "
                  f"(device watchdog {SIM_WATCHDOG_S:g} s); record lost the last "
                  f"{_range(lost, 1000, 'ms')} of samples; "
                  f"{sum(t.status == 'interrupted' for t in trials)} of {len(trials)} shown "
                  f"interrupted; all within target: {ok}", highlight=False)
    if args.json is not None:
        args.json.write_text(json.dumps({"load_before": load_before,
                                         "load_after": machine_load(),
                                         "trials": [asdict(t) for t in trials]}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
