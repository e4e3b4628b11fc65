"""Control latency through the pseudo-terminal simulator: sample written -> command heard.

``fes-sim`` streams a generated walk whose sagittal gyro value is the sample's number
(mod 600), and traces the time it wrote each sample and the time it heard each command.
This script is the controller: the WitMotion driver reads each sample and the RehaStim 2
driver answers it at once with a current that encodes the sample number (mod 60), so every
command can be matched to the sample that caused it. Both times come from the simulator's
monotonic clock, so the figure covers both serial lines, both drivers and the kernel.

The reaction is the bare transport path (no detector, no supervisor): what the serial
layer adds to a tick. DESIGN target: <= 10 ms p99.

    python benchmarks/serial_latency.py [--samples 10000] [--rate 200]
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controller.devices.base import ChannelSetup
from controller.devices.rehastim2 import RehaStim2
from controller.devices.witmotion_imu import WitMotionImu
from tests.sim_process import running_simulator

CODE_SPAN = 60
"""Distinct currents used to tag commands (2..120 mA on a simulator: no one is attached)."""
GYRO_SPAN = 600
WARMUP_SAMPLES = 200
POLL_S = 0.0002


def write_walk(path: Path, samples: int, rate_hz: float) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time_s", *(f"left_acc_{a}" for a in "xyz"),
                         *(f"left_gyr_{a}" for a in "xyz")])
        for k in range(samples):
            writer.writerow([f"{k / rate_hz:.9f}", 0.0, 0.0, 9.81, k % GYRO_SPAN, 0.0, 0.0])


def current_for(sample_number: int) -> int:
    return 2 * (sample_number % CODE_SPAN) + 2


def control_loop(stimulator: RehaStim2, imu: WitMotionImu, samples: int) -> None:
    handled = 0
    while handled < samples:
        batch = imu.read()
        for sample in batch:
            stimulator.update({1: current_for(round(sample.gyro_dps[0]))})
        handled += len(batch)
        stimulator.check()
        if not batch:
            time.sleep(POLL_S)


def latencies_s(trace: Path) -> list[float]:
    written: dict[int, list[tuple[float, int]]] = {}
    heard: list[tuple[float, int]] = []
    for line in trace.read_text().splitlines():
        record = json.loads(line)
        if "sample" in record:
            number = record["sample"]
            written.setdefault(number % CODE_SPAN, []).append((record["t_s"], number))
        elif record["currents_ma"][0]:
            heard.append((record["t_s"], (record["currents_ma"][0] - 2) // 2))
    result = []
    for t_s, code in heard:
        candidates = written.get(code, [])
        index = bisect.bisect_right(candidates, (t_s, float("inf"))) - 1
        if index >= 0 and candidates[index][1] >= WARMUP_SAMPLES:
            result.append(t_s - candidates[index][0])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0, help="IMU rate, Hz")
    args = parser.parse_args()
    total = args.samples + WARMUP_SAMPLES
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        walk = folder / "ramp_foot_imu.csv"
        write_walk(walk, total + 2 * int(args.rate), args.rate)
        trace = folder / "trace.jsonl"
        with running_simulator(folder, "--walk", str(walk), "--imu-rate", str(args.rate),
                               "--trace", str(trace)) as sim:
            stimulator = RehaStim2(sim.stimulator)
            stimulator.connect()
            stimulator.configure([ChannelSetup(1, 200)], frequency_hz=40.0)
            imu = WitMotionImu(sim.imu, rate_hz=args.rate)
            try:
                control_loop(stimulator, imu, total)
            finally:
                imu.close()
                stimulator.close()
        measured = sorted(latencies_s(trace))
    if not measured:
        print("no command could be matched to a sample")
        return 1
    p99 = measured[min(len(measured) - 1, int(0.99 * len(measured)))]
    print(f"pty control latency over {len(measured)} samples at {args.rate:g} Hz "
          "(sample written by fes-sim -> command heard by fes-sim):")
    print(f"  median {statistics.median(measured) * 1000:.2f} ms   p99 {p99 * 1000:.2f} ms   "
          f"max {measured[-1] * 1000:.2f} ms   (target p99 <= 10 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
