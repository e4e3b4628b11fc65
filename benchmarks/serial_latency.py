"""Control latency through the pseudo-terminal simulator: sample written -> command heard.

Two figures, both timed by ``fes-sim``'s trace: the monotonic time it wrote each IMU sample
and the time it heard each stimulator command (CLOCK_MONOTONIC, one clock for every process
on the machine, so nothing needs aligning).

**Transport.** ``fes-sim`` streams a generated walk whose sagittal gyro value is the
sample's number (mod 600). This script is a trivial controller: the WitMotion driver reads
each sample and the RehaStim 2 driver answers it at once with a current that encodes the
sample number (mod 60), so every command names the sample that caused it. No detector, no
supervisor: what both serial lines, both drivers and the kernel add to a tick.

**Full session.** The real :class:`~controller.session.Session` (the serial drivers,
the timed-cadence detector, the phase machine, the safety supervisor and the SQLite
record) runs on the same kind of stream, once on the old fixed 10 ms polling clock and
once on the sample-driven clock ``fes run`` uses
(:func:`controller.assembly.hardware.sample_driven_clock`). Supervisor commands are
amplitudes, so
they cannot carry a sample number; they are matched instead:

* The sample's number is in the gyro values (x: number mod 600, y: number // 600 mod 100,
  unique for 60,000 samples, longer than a run), which the cadence trigger ignores.
* An observer of the session notes the newest sample of each tick (none if the tick read
  nothing) and, for every command the supervisor sends, that sample and the currents (in
  the device's 2 mA steps, as the supervisor sends them). A tick reads once and then
  commands at most once, so the note is the newest sample the sending tick consumed: the
  last one its command could have reacted to.
* The supervisor sends a command exactly when its quantised currents change, so the notes,
  in order, are the commands ``fes-sim`` heard, in order. The script checks this pairing (same count, same currents
  in every pair) and prints no figure if it does not hold.
* A command's latency is from the write of that sample to the command being heard. A tick
  reads each sample only once, so each matched sample has one command.
* Commands from ticks that read no sample are left out. Those are timer ticks (the
  sample-driven clock's 10 ms fallback, or a grid point with nothing new): a ramp step
  there is caused by time, not by a sample, and charging it to the last sample read
  would count the wait for the ramp's next 2 mA step as latency. The price is a small
  bias: a sample arriving just after such a tick finds little ramp left to step, so it
  is matched a little less often.

A command on (nearly) every tick needs an amplitude that changes every tick through the
device's 2 mA step: eight channels with settings from 100 mA down to 79 mA, ramped up
over 2 s and down over 1 s, in 0.8 s bursts from a timed cadence every 3 s (40 % on-time,
inside the 50 % duty-cycle limit), so their 2 mA steps interleave. Between bursts nothing
changes and no sample is matched, so a run streams about three samples per matched one.

The sessions' IMU runs at 99.5 Hz, not 100. A real sensor's clock is not the host's, so
its samples slide across the 10 ms polling grid; ``fes-sim`` stamps on the host's own
clock, and at exactly 100 Hz every sample would keep one phase to the grid for the whole
run, making the polling figure whatever that phase happened to be (anything from 0 to
10 ms). At 99.5 Hz the phase sweeps the whole tick every two seconds. On the 10 ms grid
a tick usually reads one sample; when it reads two, the older one waited longer still
and is not counted, so the polling figure is if anything flattering.

DESIGN target: <= 10 ms p99 through the pty simulator.

    python benchmarks/serial_latency.py [--samples 10000] [--rate 200] [--session-rate 99.5]
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controller.assembly.build import build_session
from controller.assembly.hardware import TICK_S, sample_driven_clock
from controller.clock import Clock, MonotonicClock
from controller.devices.base import ChannelSetup
from controller.devices.rehastim2 import RehaStim2
from controller.devices.witmotion_imu import WitMotionImu
from controller.observe import SessionObserver
from controller.runner import SessionRunner
from controller.types import Fault, Sample
from protocols import parse_protocol
from tests.sim_process import running_simulator

CODE_SPAN = 60
"""Distinct currents used to tag transport commands (2..120 mA on a simulator: no one is
attached)."""
GYRO_SPAN = 600
GYRO_PAGES = 100
"""Sample numbers are written as (number mod GYRO_SPAN, number // GYRO_SPAN mod GYRO_PAGES)
on gyro x and y: 60,000 distinct samples, 10 minutes at 100 Hz."""
WARMUP_SAMPLES = 200
POLL_S = 0.0002
SESSION_SIM_ARGS = ("--init-interval", "0.05")
"""The simulated RehaStim 2 announces itself every 50 ms, so the session connects at once."""
SETTINGS_MA = (100, 97, 94, 91, 88, 85, 82, 79)

RAMPS_PROTOCOL = "\n".join([
    'name = "latency benchmark: interleaved ramps on eight channels"',
    'description = "Amplitudes that cross a 2 mA step on nearly every tick of a burst."',
    'mode = "gait"',
    'leg = "left"',
    "extension_s = 0.0",
    *(f"""
[[channels]]
channel = {channel}
site = "simulated electrode {channel}"
amplitude_min_ma = {setting}.0
amplitude_max_ma = {setting}.0
amplitude_start_ma = {setting}.0
pulse_width_us = 20
""" for channel, setting in enumerate(SETTINGS_MA, start=1)),
    """
[stimulation]
frequency_hz = 20.0
ramp_up_s = 2.0
ramp_down_s = 1.0
max_burst_s = 2.0
duty_cycle_max = 0.5

[trigger]
kind = "cadence"
cadence_steps_per_min = 20.0
swing_fraction = 0.27   # 0.8 s of request every 3 s, 1.2 s on with the ramp down

[safety]
charge_per_phase_max_uc = 50.0

[session]
duration_s = 3600.0
"""])


def write_walk(path: Path, samples: int, rate_hz: float) -> None:
    """A still foot whose gyro x and y carry the sample's number."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time_s", *(f"left_acc_{a}" for a in "xyz"),
                         *(f"left_gyr_{a}" for a in "xyz")])
        for k in range(samples):
            writer.writerow([f"{k / rate_hz:.9f}", 0.0, 0.0, 9.81, k % GYRO_SPAN,
                             k // GYRO_SPAN % GYRO_PAGES, 0.0])


def sample_code(sample: Sample) -> int:
    """The sample's number modulo the span of :func:`write_walk`."""
    return round(sample.gyro_dps[0]) + GYRO_SPAN * round(sample.gyro_dps[1])


def percentiles_line(measured: Sequence[float]) -> str:
    ordered = sorted(measured)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (f"  median {statistics.median(ordered) * 1000:.2f} ms   p99 {p99 * 1000:.2f} ms   "
            f"max {ordered[-1] * 1000:.2f} ms   (target p99 <= 10 ms)")


# -- transport: the drivers with a trivial echo ---------------------------------------------

def current_for(sample_number: int) -> int:
    return 2 * (sample_number % CODE_SPAN) + 2


def echo_loop(stimulator: RehaStim2, imu: WitMotionImu, samples: int) -> None:
    handled = 0
    while handled < samples:
        batch = imu.read()
        for sample in batch:
            stimulator.update({1: current_for(round(sample.gyro_dps[0]))})
        handled += len(batch)
        stimulator.check()
        if not batch:
            time.sleep(POLL_S)


def transport_latencies_s(trace: Path) -> list[float]:
    written: dict[int, list[tuple[float, int]]] = {}
    heard: list[tuple[float, int]] = []
    for record in read_trace(trace):
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


def measure_transport(folder: Path, samples: int, rate_hz: float) -> list[float]:
    total = samples + WARMUP_SAMPLES
    walk = folder / "transport_foot_imu.csv"
    write_walk(walk, total + 2 * int(rate_hz), rate_hz)
    trace = folder / "transport_trace.jsonl"
    with running_simulator(folder, "--walk", str(walk), "--imu-rate", str(rate_hz),
                           "--trace", str(trace)) as sim:
        stimulator = RehaStim2(sim.stimulator)
        stimulator.connect()
        stimulator.configure([ChannelSetup(1, 200)], frequency_hz=40.0)
        imu = WitMotionImu(sim.imu, rate_hz=rate_hz)
        try:
            echo_loop(stimulator, imu, total)
        finally:
            imu.close()
            stimulator.close()
    return transport_latencies_s(trace)


# -- full session: the real session on the serial drivers -----------------------------------

@dataclass
class Note:
    currents_ma: tuple[int, ...]
    fresh_code: int | None
    """The newest sample the sending tick read; None for a tick that read none."""


@dataclass
class LatencyProbe(SessionObserver):
    """Notes every command with the newest sample its tick read, and ends the session once
    enough distinct samples were answered (or at its first fault: no figure then)."""

    wanted_codes: int
    runner: SessionRunner | None = None
    notes: list[Note] = field(default_factory=list)
    codes: set[int] = field(default_factory=set)
    _fresh_code: int | None = None

    def on_sample(self, sample: Sample) -> None:
        self._fresh_code = sample_code(sample)

    def on_command(self, t_s: float, amplitudes_ma: Mapping[int, float]) -> None:
        currents = tuple(round(amplitudes_ma[ch]) for ch in sorted(amplitudes_ma))
        self.notes.append(Note(currents, self._fresh_code))
        if self._fresh_code is not None:
            self.codes.add(self._fresh_code)

    def on_fault(self, fault: Fault) -> None:
        self._stop("fault")

    def on_tick(self, t_s: float) -> None:
        self._fresh_code = None
        if len(self.codes) >= self.wanted_codes:
            self._stop("benchmark")

    def _stop(self, source: str) -> None:
        assert self.runner is not None
        self.runner.stop(source)


class TickCounter(SessionObserver):
    def __init__(self) -> None:
        self.count = 0

    def on_tick(self, t_s: float) -> None:
        self.count += 1


class UnsoundMatch(Exception):
    """The commands heard are not the updates noted, one for one."""


def session_latencies_s(trace: Path, notes: Sequence[Note]) -> list[float]:
    """One latency per matched sample: written -> the command its tick sent."""
    written: dict[int, list[tuple[float, int]]] = {}
    heard: list[tuple[float, tuple[int, ...]]] = []
    for record in read_trace(trace):
        if "sample" in record:
            number = record["sample"]
            written.setdefault(number % (GYRO_SPAN * GYRO_PAGES), []).append(
                (record["t_s"], number))
        else:
            heard.append((record["t_s"], tuple(record["currents_ma"])))
    if len(heard) != len(notes):
        raise UnsoundMatch(f"{len(heard)} commands heard, {len(notes)} updates noted")
    latency_s: dict[int, float] = {}
    for (heard_s, currents), note in zip(heard, notes, strict=True):
        if currents != note.currents_ma:
            raise UnsoundMatch(f"heard {currents} where {note.currents_ma} was sent")
        if note.fresh_code is None:
            continue
        candidates = written.get(note.fresh_code, [])
        index = bisect.bisect_right(candidates, (heard_s, float("inf"))) - 1
        if index < 0:
            raise UnsoundMatch(f"no sample {note.fresh_code} written before a command")
        written_s, number = candidates[index]
        latency_s[number] = heard_s - written_s
    return [latency_s[number] for number in sorted(latency_s)[WARMUP_SAMPLES:]]


def measure_session(folder: Path, samples: int, rate_hz: float, sample_driven: bool
                    ) -> tuple[list[float], int]:
    """Latencies of one full session run, and how many ticks it took."""
    name = "sample_driven" if sample_driven else "polling"
    walk = folder / f"{name}_foot_imu.csv"
    write_walk(walk, GYRO_SPAN * GYRO_PAGES, rate_hz)
    trace = folder / f"{name}_trace.jsonl"
    protocol = parse_protocol(RAMPS_PROTOCOL)
    with running_simulator(folder, "--walk", str(walk), "--imu-rate", str(rate_hz),
                           "--trace", str(trace), *SESSION_SIM_ARGS) as sim:
        imu = WitMotionImu(sim.imu, rate_hz=rate_hz)
        clock: Clock = sample_driven_clock(imu) if sample_driven else MonotonicClock(TICK_S)
        probe = LatencyProbe(samples + WARMUP_SAMPLES)
        ticks = TickCounter()
        try:
            session = build_session(protocol, imu, RehaStim2(sim.stimulator), clock,
                                    folder / f"{name}.sqlite", sensor_name=sim.imu,
                                    stimulator_name=sim.stimulator, observers=[probe, ticks])
            probe.runner = SessionRunner(session, watchdog_s=protocol.safety_config().loop_late_s)
            summary = probe.runner.run()
        finally:
            imu.close()
    if summary.faults:
        raise UnsoundMatch(f"the session faulted: {summary.faults}")
    return session_latencies_s(trace, probe.notes), ticks.count


def read_trace(trace: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in trace.read_text().splitlines()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200.0, help="IMU rate for transport, Hz")
    parser.add_argument("--session-rate", type=float, default=99.5,
                        help="IMU rate for the full sessions, Hz (off 100 Hz on purpose)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        transport = measure_transport(folder, args.samples, args.rate)
        print(f"transport over {len(transport)} samples at {args.rate:g} Hz (sample written "
              "by fes-sim -> echo command heard by fes-sim; drivers only):")
        print(percentiles_line(transport))
        for sample_driven, label in ((False, "10 ms polling clock"),
                                     (True, "sample-driven clock (fes run)")):
            try:
                measured, ticks = measure_session(folder, args.samples, args.session_rate,
                                                  sample_driven)
            except UnsoundMatch as exc:
                print(f"full session, {label}: no figure, the matching does not hold: {exc}")
                return 1
            print(f"full session, {label}, over {len(measured)} matched samples at "
                  f"{args.session_rate:g} Hz in {ticks} ticks (sample written by fes-sim -> "
                  "the command of the tick that read it as its newest sample):")
            print(percentiles_line(measured))
    return 0


if __name__ == "__main__":
    sys.exit(main())
