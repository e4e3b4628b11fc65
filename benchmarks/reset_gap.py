"""How long the control loop stands still while a reset brings a stimulator up that
does not come up.

A session on ``fes-sim``'s pseudo-terminals (the real serial drivers, in this process)
latches ``stimulator_error`` after ``stim silent`` (or ``--fault``: ``stim refuse``,
``stim late 0.3``); the operator then presses reset, which has to connect and configure a
stimulator that never answers (2 s handshake), refuses, or answers too late. Every
control tick's wall time is taken, and the script prints, per press: the longest gap
between two ticks from the press until 0.5 s after the reset's answer was seen in the
record, the ticks taken from the press to the answer, and the answer. A loop that blocks
in the reset shows one gap as long as the bring-up and a handful of ticks; one that brings
the stimulator up off its thread shows gaps of a tick or two. (Recorded samples are no
evidence either way: the IMU driver buffers them, so a loop that stood still records them
afterwards.)

Usage: ``python benchmarks/reset_gap.py [--presses 3] [--fault "stim silent"] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from controller.assembly.hardware import build_device_session
from controller.observe import SessionObserver
from controller.record import read_rows
from protocols import load_protocol
from tests.sim_process import running_simulator, wait_for
from tests.timed_protocols import timed_gait

WALK = ROOT / "simulator" / "data" / "walk1_2x20m_foot_imu.csv"
SIM_ARGS = ("--walk", str(WALK), "--imu-rate", "100", "--init-interval", "0.05",
            "--watchdog", "1.0")
ANSWER_WAIT_S = 20.0
AFTER_S = 0.5
"""Ticks taken after the answer: the loop's first ticks after a reset count too."""


def _notices(db: Path, since_s: float) -> list[tuple[float, str, str]]:
    return [(t, kind, detail) for t, kind, detail in read_rows(
        db, "SELECT t_s, kind, detail FROM notices WHERE t_s >= ? ORDER BY t_s", (since_s,))]


def _answers(db: Path, since_s: float) -> list[tuple[float, str, str]]:
    """The answers to resets pressed since ``since_s``: accepted or refused."""
    return [n for n in _notices(db, since_s) if n[1] in ("reset", "reset_refused")]


def _samples(db: Path) -> int:
    count: int = read_rows(db, "SELECT COUNT(*) FROM samples")[0][0]
    return count


class TickTimes(SessionObserver):
    """The wall time at the end of every control tick."""

    def __init__(self) -> None:
        self.times_s: list[float] = []

    def on_tick(self, t_s: float) -> None:
        self.times_s.append(time.monotonic())


def measure(presses: int, fault: str) -> list[dict[str, Any]]:
    """One session, ``presses`` resets on a stimulator under ``fault``; a row per press."""
    with tempfile.TemporaryDirectory() as folder:
        protocol_path, db = Path(folder) / "timed.toml", Path(folder) / "record.sqlite"
        protocol_path.write_text(timed_gait("reset gap", "timed steps", ramp_up_s=0.1,
                                            ramp_down_s=0.5, sensor_frozen_s=0.2))
        rows: list[dict[str, Any]] = []
        with running_simulator(Path(folder), *SIM_ARGS) as sim:
            ticks = TickTimes()
            device = build_device_session(load_protocol(protocol_path),
                                          f"serial://{sim.stimulator}",
                                          f"serial://{sim.imu}", db, observers=[ticks])
            session, ticks_s = device.session, ticks.times_s
            runner = device.runner()
            runner.start()
            try:
                wait_for(lambda: _samples(db) > 200, ANSWER_WAIT_S)
                sim.command(fault)
                wait_for(lambda: any(f.kind.value == "stimulator_error"
                                     for f in session.supervisor.faults), ANSWER_WAIT_S)
                for _ in range(presses):
                    pressed_s = time.monotonic()
                    runner.reset_faults()
                    answer = wait_for(partial(_answers, db, pressed_s), ANSWER_WAIT_S)[0]
                    answered_s = time.monotonic()
                    time.sleep(AFTER_S)
                    end_s = answered_s + AFTER_S
                    window = [t for t in ticks_s if pressed_s - 0.1 <= t <= end_s]
                    gaps = [b - a for a, b in itertools.pairwise(window)]
                    rows.append({"answer_s": round(answered_s - pressed_s, 3),
                                 "answer": f"{answer[1]}: {answer[2]}",
                                 "longest_tick_gap_ms": round(1000 * max(gaps), 1),
                                 "ticks_before_answer": sum(
                                     pressed_s <= t <= answered_s for t in ticks_s)})
            finally:
                runner.stop("benchmark")
                runner.wait(timeout_s=30.0)
        return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=3)
    parser.add_argument("--fault", default="stim silent",
                        help="the fes-sim command that keeps the stimulator from coming up "
                             "(stim silent, stim refuse, stim late 0.3)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    rows = measure(args.presses, args.fault)
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"reset after '{args.fault}' (load average {load}, {os.cpu_count()} cores)")
    print(f"{'answer after':>12}  {'longest tick gap':>16}  {'ticks until answer':>18}  answer")
    for row in rows:
        print(f"{row['answer_s']:>10.2f} s  {row['longest_tick_gap_ms']:>13.1f} ms  "
              f"{row['ticks_before_answer']:>18}  {row['answer']}")
    if args.json is not None:
        args.json.write_text(json.dumps({"fault": args.fault, "load_average": os.getloadavg(),
                                         "presses": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
