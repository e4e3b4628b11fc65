"""Stimulator control latency side by side: this project's RehaStim 2 driver and
pysciencemode, sending the same amplitude updates to the same ``fes-sim`` stimulator.

Why: the transport figure of ``serial_latency.py`` says what our driver adds to a tick,
but not whether that is good; an independent ScienceMode 2 implementation on the same
pseudo-terminal, the same machine and the same sequence of updates is the yardstick.

What is sent: a gait-like ramp on channel 1 (2 -> 40 -> 2 mA in the device's 2 mA steps,
over and over; 200 µs, 40 Hz), one update per control tick (``--interval-ms``, 10 ms as
``fes run``), every update a change, so every one is a StartChannelListMode on the wire.
The drivers take turns on one ``fes-sim`` (ours, theirs, ours, ... ``--rounds`` each),
each connecting afresh: a new client gets the device's Init once the previous client's
silence has run the simulated device's 1 s watchdog out.

Two figures per update, both on CLOCK_MONOTONIC (one clock for every process here):

* **issued -> heard**: ``time.monotonic()`` just before the call, to the time ``fes-sim``
  heard the StartChannelListMode (its ``--trace``). The k-th command heard in a run is
  the k-th update issued; the script checks this (same count, same current in every pair)
  and prints no figure if it does not hold.
* **call**: how long the call blocked its caller (what a control loop would lose per tick).

And per driver, the CPU time its runs of updates took, per update (every thread of it).

What each driver does per update, so the figures compare like with like:

* **ours** (:class:`controller.devices.rehastim2.RehaStim2`): ``update({1: mA})`` encodes
  the command, writes it and returns; its acknowledgement (100 ms deadline) is matched by
  the driver's reader thread, and ``check()`` (called once a tick, as the supervisor does,
  outside the timed call) raises one that is late or refused. The acknowledged
  GetStimulationMode poll runs only when nothing is awaited and the line was quiet for
  50 ms, so not at all at one update per 10 ms.
* **pysciencemode** (``Rehastim2.start_stimulation(upd_list_channels=[...])``): writes the
  command and then reads the port until an answer arrives, with no time-out (a busy loop
  of non-blocking reads), so its call is a full round trip, and a device that never
  answers hangs its caller: each run here is in a worker thread with a deadline. The busy
  loop holds a core while it waits; on a 2-core machine with other work, the simulator
  that must hear the command may then wait for a core too.

A run in which a driver fails (ours latches an answer later than its 100 ms deadline, as
it must, when the machine is loaded enough) is printed with the load and done again, up
to three times; its commands are not counted.

    python benchmarks/sciencemode_latency.py [--updates 3000] [--rounds 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import io
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pty_rig import Simulator, machine_load, rig_options

from controller.devices.base import ChannelSetup, StimulatorError
from controller.devices.rehastim2 import RehaStim2

CHANNEL = 1
PULSE_WIDTH_US = 200
FREQUENCY_HZ = 40.0
STIMULATION_INTERVAL_MS = 25
"""pysciencemode's form of the same 40 Hz."""
RAMP_TOP_MA = 40
WARMUP_UPDATES = 50
"""Left out of the figures at the start of each run (first writes, caches, the scheduler)."""
HANDSHAKE_S = 5.0
"""Our driver's wait for the device's Init: the previous client's 1 s of silence must run
the simulated watchdog out first, on a machine others are loading."""
TAIL_S = 0.5
"""A run's last command is heard this soon after its call returned (the next run cannot
start sooner: it waits for the simulated device's 1 s watchdog)."""
ATTEMPTS = 3
SPARE_S = 30.0
"""A run's deadline beyond its paced length: connecting, stopping, a loaded machine."""


@dataclass(frozen=True)
class Issued:
    """One update as the caller saw it."""

    current_ma: int
    issued_s: float
    returned_s: float


@dataclass(frozen=True)
class Updates:
    """What one driver's run of updates did, and the CPU time it took (process time, so
    every thread of the driver's: our reader, pysciencemode's answer and watchdog threads)."""

    issued: list[Issued]
    cpu_s: float


@dataclass
class Run:
    driver: str
    updates: Updates
    load: str

    @property
    def issued(self) -> list[Issued]:
        return self.updates.issued


class UnsoundMatch(Exception):
    """The commands heard are not the updates issued, one for one."""


class DriverHung(Exception):
    """A run did not finish by its deadline."""


class DriverFailed(Exception):
    """A driver failed every attempt at a run."""


def ramp_ma(updates: int) -> list[int]:
    """2, 4, ..., top, top - 2, ..., 4, 2, 4, ...: every update a change of one 2 mA step."""
    up = list(range(2, RAMP_TOP_MA + 1, 2))
    cycle = up + up[-2:0:-1]
    return [cycle[k % len(cycle)] for k in range(updates)]


def paced(currents_ma: Sequence[int], interval_s: float,
          send: Callable[[int], None], after: Callable[[], None] = lambda: None
          ) -> Updates:
    """Call ``send`` once per tick of ``interval_s`` (at once when a call overran), timing
    each call; ``after`` is the tick's untimed remainder."""
    issued = []
    cpu_start_s = time.process_time()
    start_s = time.monotonic()
    for k, current_ma in enumerate(currents_ma):
        delay_s = start_s + k * interval_s - time.monotonic()
        if delay_s > 0:
            time.sleep(delay_s)
        issued_s = time.monotonic()
        send(current_ma)
        returned_s = time.monotonic()
        after()
        issued.append(Issued(current_ma, issued_s, returned_s))
    return Updates(issued, time.process_time() - cpu_start_s)


def run_ours(port: str, currents_ma: Sequence[int], interval_s: float) -> Updates:
    stimulator = RehaStim2(port, handshake_timeout_s=HANDSHAKE_S)
    stimulator.connect()
    try:
        stimulator.configure([ChannelSetup(CHANNEL, PULSE_WIDTH_US)], FREQUENCY_HZ)
        return paced(currents_ma, interval_s,
                     lambda current_ma: stimulator.update({CHANNEL: current_ma}),
                     stimulator.check)
    finally:
        stimulator.close()


class TheirDriver:
    """pysciencemode's Rehastim2 on ``port``, started, updated and shut down as its own
    interop test does; :meth:`abandon` stops its threads if a call never returns."""

    def __init__(self, psm: ModuleType, port: str) -> None:
        self._psm = psm
        self.port = port
        self.device: Any = None

    def channel(self, current_ma: int) -> Any:
        return self._psm.Channel(mode="Single", no_channel=CHANNEL, amplitude=current_ma,
                                 pulse_width=PULSE_WIDTH_US,
                                 device_type=self._psm.Device.Rehastim2)

    def run(self, currents_ma: Sequence[int], interval_s: float) -> Updates:
        self.device = self._psm.Rehastim2(self.port)
        try:
            self.device.init_channel(stimulation_interval=STIMULATION_INTERVAL_MS,
                                     list_channels=[self.channel(currents_ma[0])])
            updates = paced(currents_ma, interval_s, lambda current_ma: self.device.
                            start_stimulation(upd_list_channels=[self.channel(current_ma)]))
            self.device.end_stimulation()
            return updates
        finally:
            self.device.disconnect()
            self.device.close_port()

    def abandon(self) -> None:
        """End the watchdog and answer threads (their loops test these flags) and close
        the port, so a read loop stuck waiting for an answer raises instead of spinning."""
        if self.device is not None:
            self.device.reha_connected = False
            self.device.stimulation_active = False
            with contextlib.suppress(Exception):
                self.device.close_port()


def guarded(work: Callable[[], Updates], timeout_s: float,
            on_hang: Callable[[], None] = lambda: None) -> Updates:
    """``work`` in a worker thread (pysciencemode's reads have no time-out): its result,
    its exception, or :class:`DriverHung` after ``timeout_s``."""
    result: list[Updates] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(exc)

    worker = threading.Thread(target=target, name="latency-run", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        on_hang()
        raise DriverHung(f"no answer within {timeout_s:g} s")
    if errors:
        raise errors[0]
    return result[0]


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """pysciencemode prints "thread started" from its answer thread; nothing else prints
    while a run is on, so the swap hides only that."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def heard_commands(trace: Path) -> list[tuple[float, int]]:
    """(time heard, channel 1 current) of every StartChannelListMode ``fes-sim`` heard."""
    heard = []
    for line in trace.read_text().splitlines():
        record = json.loads(line)
        if "currents_ma" in record:
            heard.append((record["t_s"], record["currents_ma"][0]))
    return heard


def latencies_s(run: Run, heard: Sequence[tuple[float, int]]) -> list[float]:
    """Issued -> heard for each update of ``run`` after the warm-up, paired in order with
    the commands heard from its first update until ``TAIL_S`` after its last call."""
    first_s, last_s = run.issued[0].issued_s, run.issued[-1].returned_s
    window = [(t_s, current) for t_s, current in heard if first_s <= t_s <= last_s + TAIL_S]
    if len(window) != len(run.issued):
        raise UnsoundMatch(f"{run.driver}: {len(window)} commands heard for "
                           f"{len(run.issued)} updates")
    result = []
    for k, ((heard_s, current_ma), update) in enumerate(zip(window, run.issued, strict=True)):
        if current_ma != update.current_ma:
            raise UnsoundMatch(f"{run.driver}: update {k} sent {update.current_ma} mA, "
                               f"the simulator heard {current_ma} mA")
        if k >= WARMUP_UPDATES:
            result.append(heard_s - update.issued_s)
    return result


def figures_ms(values_s: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values_s)
    return {"median": statistics.median(ordered) * 1000,
            "p99": statistics.quantiles(ordered, n=100)[98] * 1000,
            "max": ordered[-1] * 1000}


def measure(psm: ModuleType, folder: Path, updates: int, interval_s: float, rounds: int,
            failures: list[str]) -> list[Run]:
    """Both drivers in turn on one simulator; the runs (the trace can be read once this
    returns: the simulator is closed and its trace flushed)."""
    currents = ramp_ma(updates)
    timeout_s = updates * interval_s * 3 + SPARE_S
    runs = []
    simulator = Simulator(folder, "sim", "--trace", str(folder / "trace.jsonl"))
    theirs = TheirDriver(psm, simulator.stimulator)
    try:
        for _ in range(rounds):
            runs.append(attempts("ours", lambda: guarded(
                lambda: run_ours(simulator.stimulator, currents, interval_s), timeout_s),
                failures))
            with quiet_stdout():
                runs.append(attempts("pysciencemode", lambda: guarded(
                    functools.partial(theirs.run, currents, interval_s), timeout_s,
                    theirs.abandon), failures))
    finally:
        simulator.close()
    return runs


def attempts(driver: str, run: Callable[[], Updates], failures: list[str]) -> Run:
    """``run`` until it completes, up to ``ATTEMPTS`` times: a driver error (ours latches
    an answer late past its 100 ms deadline, as it must, on a machine loaded enough) is
    noted in ``failures``, with the load, and the run is done again."""
    for _ in range(ATTEMPTS):
        try:
            updates = run()
        except (StimulatorError, RuntimeError) as exc:
            # RuntimeError: how pysciencemode reports an error answer
            failures.append(f"{driver}: {type(exc).__name__}: {exc} ({machine_load()})")
        else:
            return Run(driver, updates, machine_load())
    raise DriverFailed(f"{driver} failed {ATTEMPTS} runs in a row: {failures[-1]}")


def report(runs: Sequence[Run], heard: Sequence[tuple[float, int]], interval_s: float
           ) -> dict[str, Any]:
    """Per driver: the figures over all its runs, and how many updates were heard more than
    one control tick after they were issued."""
    table: dict[str, Any] = {}
    for driver in ("ours", "pysciencemode"):
        mine = [run for run in runs if run.driver == driver]
        latency = [value for run in mine for value in latencies_s(run, heard)]
        call = [u.returned_s - u.issued_s for run in mine for u in run.issued[WARMUP_UPDATES:]]
        table[driver] = {"updates": len(latency), "issued_to_heard_ms": figures_ms(latency),
                         "heard_after_a_tick": sum(value > interval_s for value in latency),
                         "call_ms": figures_ms(call),
                         "cpu_ms_per_update": 1000 * sum(run.updates.cpu_s for run in mine)
                         / sum(len(run.issued) for run in mine),
                         "per_run_median_ms": [figures_ms(latencies_s(run, heard))["median"]
                                               for run in mine],
                         "loads": [run.load for run in mine]}
    return table


def print_table(table: dict[str, Any], interval_ms: float) -> None:
    print(f"{'driver':<14} {'updates':>7}   issued -> heard (ms): median    p99    max"
          f"   call blocks (ms): median    p99    max   CPU per update (ms)")
    for driver, row in table.items():
        heard, call = row["issued_to_heard_ms"], row["call_ms"]
        print(f"{driver:<14} {row['updates']:>7}   {'':>20}{heard['median']:>7.2f} "
              f"{heard['p99']:>6.2f} {heard['max']:>6.2f}   {'':>17}{call['median']:>7.2f} "
              f"{call['p99']:>6.2f} {call['max']:>6.2f}   {row['cpu_ms_per_update']:>19.2f}")
    for driver, row in table.items():
        medians = ", ".join(f"{value:.2f}" for value in row["per_run_median_ms"])
        print(f"  {driver}: {row['heard_after_a_tick']} updates heard more than a tick after "
              f"they were issued; issued -> heard median per run {medians} ms; "
              f"loads after each run: {'; '.join(row['loads'])}")
    print(f"  one update every {interval_ms:g} ms, {WARMUP_UPDATES} warm-up updates left "
          "out of each run; ours returns after the write (its answer is checked a tick "
          "later), pysciencemode's call waits for the answer")


def load_pysciencemode() -> ModuleType | None:
    try:
        return importlib.import_module("pysciencemode")
    except ImportError:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=3000, help="updates per run")
    parser.add_argument("--rounds", type=int, default=2,
                        help="runs of each driver, taking turns")
    parser.add_argument("--interval-ms", type=float, default=10.0,
                        help="one update per this many ms (the control tick)")
    args = rig_options(parser)
    if args.updates <= WARMUP_UPDATES + 100 or args.rounds < 1 \
            or not 1.0 <= args.interval_ms <= 1000.0:
        print(f"--updates must be over {WARMUP_UPDATES + 100}, --rounds at least 1 and "
              "--interval-ms in 1-1000", file=sys.stderr)
        return 2
    psm = load_pysciencemode()
    if psm is None:
        print("pysciencemode is not installed; install it with: pip install -e '.[test]'",
              file=sys.stderr)
        return 2
    load_before = machine_load()
    print(f"{args.rounds} x {args.updates} updates per driver, {load_before} at the start")
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        try:
            runs = measure(psm, folder, args.updates, args.interval_ms / 1000, args.rounds,
                           failures)
            table = report(runs, heard_commands(folder / "trace.jsonl"),
                           args.interval_ms / 1000)
        except (DriverHung, DriverFailed, UnsoundMatch) as exc:
            print(f"no figure: {type(exc).__name__}: {exc}")
            return 1
        finally:
            for failure in failures:
                print(f"  a run failed and was done again: {failure}")
    print_table(table, args.interval_ms)
    if args.json:
        args.json.write_text(json.dumps(
            {"load_before": load_before, "load_after": machine_load(),
             "updates_per_run": args.updates, "rounds": args.rounds,
             "interval_ms": args.interval_ms, "warmup_updates": WARMUP_UPDATES,
             "drivers": table, "failed_runs": failures}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
