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
* the machine's load average beside the figures: throughput halves on a loaded machine.

    python benchmarks/session_throughput.py [--minutes 60] [--rate 100] [--json FILE]
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

import numpy as np

from controller.assembly import build_simulated_session
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
    return [Sample(float(ts), tuple(a), tuple(g))  # type: ignore[arg-type]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=100.0, help="sample rate, Hz")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    samples = long_walk(args.minutes, args.rate)
    input_rss_mb = rss_mb()
    protocol = load_protocol(LIBRARY / "peroneal_gait_gyro.toml")
    with tempfile.TemporaryDirectory() as folder:
        timer = TickTimer(len(samples), args.minutes)
        rig = build_simulated_session(protocol, samples, Path(folder) / "bench.sqlite",
                                      source="benchmark", duration_s=args.minutes * 60 + 1,
                                      observers=[timer])
        started = time.perf_counter()
        summary = rig.runner().run()
        wall_s = time.perf_counter() - started
    load_after = os.getloadavg()[0]
    ticks_ms = np.diff(timer.ends_ns[:timer.ticks]) / 1e6
    rss = timer.rss_mb[:timer.minutes]
    session_s = summary.duration_s
    figures = {
        "session_min": session_s / 60, "samples": summary.samples,
        "steps": summary.figures["steps"], "faults": len(summary.faults),
        "throughput_x": session_s / wall_s, "wall_s": wall_s,
        "tick_median_ms": float(np.median(ticks_ms)),
        "tick_p99_ms": float(np.percentile(ticks_ms, 99)), "tick_max_ms": float(ticks_ms.max()),
        "rss_input_mb": input_rss_mb, "rss_first_minute_mb": float(rss[0]),
        "rss_last_minute_mb": float(rss[-1]), "rss_growth_mb": float(rss[-1] - rss[0]),
        "load_average_1min": [load_before, load_after],
    }
    print(f"session: {session_s / 60:.1f} min at {args.rate:g} Hz, {summary.samples} samples, "
          f"{summary.figures['steps']} steps ({summary.figures['stimulated_steps']} stimulated), "
          f"{len(summary.faults)} faults")
    print(f"throughput: {figures['throughput_x']:.0f}x real time "
          f"({wall_s:.2f} s wall for {session_s:.0f} s)   target >= 1000x")
    print(f"control tick (in-process): median {figures['tick_median_ms']:.3f} ms, "
          f"p99 {figures['tick_p99_ms']:.3f} ms, max {figures['tick_max_ms']:.3f} ms   "
          "target p99 <= 2 ms")
    print(f"memory: RSS {input_rss_mb:.0f} MB with the input built, {rss[0]:.0f} MB after the "
          f"first minute of session, {rss[-1]:.0f} MB after the last: the session grew "
          f"{rss[-1] - rss[0]:+.1f} MB over {len(rss) - 1} minutes   target < 200 MB, constant")
    print(f"machine load (1-min average): {load_before:.2f} before, {load_after:.2f} after, "
          f"on {os.cpu_count()} cores")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
