"""Replay throughput, in-process control latency and memory of a long simulated session.

Builds an hour (by default) of walking at 100 Hz by resampling the bundled recorded walk
and repeating it back to back, runs the full supervised session on it (detector, phase
machine, supervisor, stimulator twin, SQLite record), and prints:

* throughput: session time / wall time (DESIGN target >= 1000x for a 100 Hz stream);
* in-process latency: wall time of one control tick, sample read to stimulator command
  written and record updated (DESIGN target <= 2 ms p99);
* peak resident memory (DESIGN target < 200 MB for 1 h).

    python benchmarks/session_throughput.py [--minutes 60] [--rate 100]
"""

from __future__ import annotations

import argparse
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
    """Wall time between the ends of consecutive ticks: one whole control tick each."""

    def __init__(self) -> None:
        self.ends_ns: list[int] = []

    def on_tick(self, t_s: float) -> None:
        self.ends_ns.append(time.perf_counter_ns())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=100.0, help="sample rate, Hz")
    args = parser.parse_args()
    samples = long_walk(args.minutes, args.rate)
    input_rss_mb = peak_rss_mb()
    protocol = load_protocol(LIBRARY / "peroneal_gait_gyro.toml")
    with tempfile.TemporaryDirectory() as folder:
        timer = TickTimer()
        rig = build_simulated_session(protocol, samples, Path(folder) / "bench.sqlite",
                                      source="benchmark", duration_s=args.minutes * 60 + 1,
                                      observers=[timer])
        started = time.perf_counter()
        summary = rig.runner().run()
        wall_s = time.perf_counter() - started
    ticks_ms = np.diff(np.array(timer.ends_ns)) / 1e6
    session_s = summary.duration_s
    rss_mb = peak_rss_mb()
    print(f"session: {session_s / 60:.1f} min at {args.rate:g} Hz, {summary.samples} samples, "
          f"{summary.figures['steps']} steps ({summary.figures['stimulated_steps']} stimulated), "
          f"{len(summary.faults)} faults")
    print(f"throughput: {session_s / wall_s:.0f}x real time "
          f"({wall_s:.2f} s wall for {session_s:.0f} s)   target >= 1000x")
    print(f"control tick (in-process): median {np.median(ticks_ms):.3f} ms, "
          f"p99 {np.percentile(ticks_ms, 99):.3f} ms, max {ticks_ms.max():.3f} ms   "
          "target p99 <= 2 ms")
    print(f"memory: peak RSS {rss_mb:.0f} MB, of which the benchmark's own input (all samples "
          f"built up front) {input_rss_mb:.0f} MB; the session added {rss_mb - input_rss_mb:.0f}"
          " MB   target < 200 MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
