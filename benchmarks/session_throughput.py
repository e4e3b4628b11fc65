"""Replay throughput, in-process control latency and memory of a long simulated session.

Builds an hour (by default) of walking at 100 Hz by resampling the bundled recorded walk
and repeating it back to back, runs the full supervised session on it (detector, phase
machine, supervisor, stimulator twin, SQLite record), and prints:

* throughput: session time / wall time (DESIGN target >= 1000x for a 100 Hz stream);
* in-process latency: wall time of one control tick, sample read to stimulator command
  written and record updated (DESIGN target <= 2 ms p99);
* memory: resident memory (RSS) sampled every minute of session time, so what the session
  itself adds over the hour shows apart from the input the benchmark builds up front
  (DESIGN target < 200 MB for 1 h, constant);
* whether the hot path ran compiled (mypyc, at install) or as pure Python: about a factor
  of two (see controller/compiled_modules.py);
* the machine's load average beside the figures: throughput halves on a loaded machine,
  so the throughput per CPU second of this process is printed too (less sensitive to
  what else runs, though a busy machine's shared caches still slow it).

    python benchmarks/session_throughput.py [--minutes 60] [--rate 100] [--runs 3]
                                            [--no-record] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from controller.assembly import build_simulated_session
from controller.compiled_modules import COMPILED, COMPILED_STATE
from controller.devices.recording import load_recording
from controller.observe import SessionObserver
from controller.types import Sample
from protocols import load_protocol
from protocols.loader import LIBRARY
from simulator import BUNDLED_WALK


def long_walk(minutes: float, rate_hz: float) -> list[Sample]:
    recording = load_recording(BUNDLED_WALK, "left")
    grid = np.arange(recording.t_s[0], recording.t_s[-1], 1.0 / rate_hz)
    acc = np.column_stack([np.interp(grid, recording.t_s, recording.acc_mps2[:, i])
                           for i in range(3)])
    gyro = np.column_stack([np.interp(grid, recording.t_s, recording.gyro_dps[:, i])
                            for i in range(3)])
    repeats = int(np.ceil(minutes * 60 / (len(grid) / rate_hz)))
    total = repeats * len(grid)
    t = np.arange(total) / rate_hz
    acc_all, gyro_all = np.tile(acc, (repeats, 1)), np.tile(gyro, (repeats, 1))
    limit = int(minutes * 60 * rate_hz)
    return [Sample(float(ts), tuple(a), tuple(g))
            for ts, a, g in zip(t[:limit], acc_all[:limit].tolist(), gyro_all[:limit].tolist(),
                                strict=True)]


class TickTimer(SessionObserver):
    """Wall time at the end of each tick (one whole control tick between two), and the
    process's RSS every minute of session time. Its arrays are allocated up front, so the
    timer adds nothing to the memory it measures."""

    def __init__(self, ticks: int, minutes: float) -> None:
        self.ends_ns = np.zeros(ticks + 16, dtype=np.int64)
        self.ticks = 0
        self.rss_mb = np.zeros(int(minutes) + 2)
        self.minutes = 0
        self._next_minute_s: float | None = None

    def on_tick(self, t_s: float) -> None:
        if self.ticks < len(self.ends_ns):
            self.ends_ns[self.ticks] = time.perf_counter_ns()
            self.ticks += 1
        if self._next_minute_s is None or t_s >= self._next_minute_s:
            self._next_minute_s = t_s + 60.0
            if self.minutes < len(self.rss_mb):
                self.rss_mb[self.minutes] = rss_mb()
                self.minutes += 1


def rss_mb() -> float:
    """Resident memory now (not the all-time peak)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def run_once(samples: list[Sample], minutes: float, rate_hz: float,
             record: bool) -> dict[str, Any]:
    """One full session on ``samples``; its figures, with the load before and after."""
    load_before = os.getloadavg()[0]
    input_rss_mb = rss_mb()
    protocol = load_protocol(LIBRARY / "peroneal_gait_gyro.toml")
    with tempfile.TemporaryDirectory() as folder:
        timer = TickTimer(len(samples), minutes)
        rig = build_simulated_session(protocol, samples,
                                      Path(folder) / "bench.sqlite" if record else None,
                                      source="benchmark", duration_s=minutes * 60 + 1,
                                      observers=[timer])
        started, cpu_started = time.perf_counter(), time.process_time()
        summary = rig.runner().run()
        wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    load_after = os.getloadavg()[0]
    ticks_ms = np.diff(timer.ends_ns[:timer.ticks]) / 1e6
    rss = timer.rss_mb[:timer.minutes]
    session_s = summary.duration_s
    figures: dict[str, Any] = {
        "session_min": session_s / 60, "rate_hz": rate_hz, "record": record,
        "samples": summary.samples, "steps": summary.figures["steps"],
        "stimulated_steps": summary.figures["stimulated_steps"], "faults": len(summary.faults),
        "throughput_x": session_s / wall_s, "wall_s": wall_s,
        "throughput_per_cpu_x": session_s / cpu_s, "cpu_s": cpu_s,
        "tick_median_ms": float(np.median(ticks_ms)),
        "tick_p99_ms": float(np.percentile(ticks_ms, 99)), "tick_max_ms": float(ticks_ms.max()),
        "rss_input_mb": input_rss_mb, "rss_first_minute_mb": float(rss[0]),
        "rss_last_minute_mb": float(rss[-1]), "rss_growth_mb": float(rss[-1] - rss[0]),
        "rss_minutes": len(rss) - 1, "rss_by_minute_mb": [round(float(v), 1) for v in rss],
        "load_average_1min": [load_before, load_after], "compiled": COMPILED,
    }
    return figures


def report(run: int, f: dict[str, Any]) -> None:
    load_before, load_after = f["load_average_1min"]
    print(f"run {run}: {f['session_min']:.1f} min at {f['rate_hz']:g} Hz, {f['samples']} "
          f"samples, {f['steps']} steps ({f['stimulated_steps']} stimulated), "
          f"{f['faults']} faults, record {'written' if f['record'] else 'NOT written'}")
    print(f"  throughput: {f['throughput_x']:.0f}x real time ({f['wall_s']:.2f} s wall for "
          f"{f['session_min'] * 60:.0f} s)   target >= 1000x")
    print(f"  per CPU second of this process (all its threads): {f['throughput_per_cpu_x']:.0f}x "
          f"({f['cpu_s']:.2f} s CPU; other processes' load costs wall time, not this)")
    print(f"  control tick (in-process): median {f['tick_median_ms']:.3f} ms, "
          f"p99 {f['tick_p99_ms']:.3f} ms, max {f['tick_max_ms']:.3f} ms   target p99 <= 2 ms")
    print(f"  memory: RSS {f['rss_input_mb']:.0f} MB with the input built, "
          f"{f['rss_first_minute_mb']:.0f} MB after the first minute of session, "
          f"{f['rss_last_minute_mb']:.0f} MB after the last: the session grew "
          f"{f['rss_growth_mb']:+.1f} MB over {f['rss_minutes']} minutes   "
          "target < 200 MB, constant")
    print(f"  machine load (1-min average): {load_before:.2f} before, {load_after:.2f} after, "
          f"on {os.cpu_count()} cores")
    print(f"  hot path: {COMPILED_STATE}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=100.0, help="sample rate, Hz")
    parser.add_argument("--runs", type=int, default=1,
                        help="sessions run back to back on the same input (median printed)")
    parser.add_argument("--no-record", action="store_true",
                        help="run without the SQLite record (to see the record's share)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if not (args.minutes >= 1 and args.rate > 0 and args.runs >= 1):
        parser.error("--minutes must be at least 1, --rate above 0, --runs at least 1")
    samples = long_walk(args.minutes, args.rate)
    runs = []
    for run in range(1, args.runs + 1):
        runs.append(run_once(samples, args.minutes, args.rate, not args.no_record))
        report(run, runs[-1])
    throughputs = [float(f["throughput_x"]) for f in runs]
    if len(runs) > 1:
        print(f"throughput over {len(runs)} runs: median {np.median(throughputs):.0f}x, "
              f"range {min(throughputs):.0f}-{max(throughputs):.0f}x")
    if args.json is not None:
        args.json.write_text(json.dumps(
            {"runs": runs, "throughput_median_x": float(np.median(throughputs))}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
