"""Every fault and every way a device can go away, at four moments, through ``fes run``.

Why: the DESIGN promises output zero within one control tick of any fault, latched until
an explicit reset that is refused while the cause lasts, and the fault in the record.
This script checks that promise from the outside, as the device sees it: time to zero is
read from what the simulated stimulator delivered (``fes-sim``'s delivered log), not from
what the controller believes it sent.

Each row is a fresh ``fes-sim`` and a fresh ``fes run`` (real serial drivers, record
written, keys on a pseudo-terminal). The fault is injected at one of four moments:

* ``stance``: gait, output off for 0.3 s after a burst (nothing to stop; it must stay off);
* ``ramp``: gait, output rising through the ramp-up (6-18 of 24 mA);
* ``swing``: gait, output at full setting for 0.15 s;
* ``hold``: a cued exercise, 0.5 s into its hold at full setting.

Then, for each row: time from the injection and from the fault the controller recorded
to zero output at the simulated stimulator, what stopped it (the controller's stop
command, the device itself, the device's watchdog), whether the output stayed off for
4 s (longer than a gait cycle, so a fault that did not latch shows as output coming back;
8 s for a damaged stream, whose usable rate is judged over seconds),
the fault kinds in the record by then, a reset (key ``r``) pressed while the cause lasts,
and a reset pressed after the cause was cleared (retried once a second for up to 6 s; a
fault recorded after the observation is named beside it). "no notice" means the record
holds neither a reset nor its refusal 2 s after the press: nothing was latched, or the
reset had not finished.

Targets: where the controller can still reach the device, zero within one control tick
(10 ms) of the fault it recorded; where it cannot (a stimulator that stopped listening or
whose port is gone, one that refuses every command, the stop included; a controller
stopped by SIGSTOP), zero within the device watchdog (1.0 s) plus a tick of the
injection. A stimulator process killed outright delivers nothing from that instant (its
time to zero is 0 by construction); its row shows what the controller recorded. The IMU
at half rate (50 Hz) is no fault: both modes accept it, and the session must run on; nor
is a stream with 30 % of its packets damaged in an exercise (about 50 usable samples a
second, twice that mode's minimum, though it loses 100 ms and more at a time, which is
``sensor_silent``, about twice a minute), nor one burst of garbage on the stimulator's line
between answers that keep coming (its decoder skips it; answers that stop coming are the
"stops answering" row). Swapped bytes are a fault in every moment: the samples that pass
the driver's checks are wrong too, and the driver raises ``sensor_error`` while it lasts.

Times: the delivered log, the record and this script all use CLOCK_MONOTONIC.

    python benchmarks/fault_matrix.py [--quick] [--faults NAME,...] [--moments M,...]
                                      [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pty_rig import (
    SIM_WATCHDOG_S,
    TICK_S,
    Change,
    Controller,
    DeliveredLog,
    Simulator,
    fes_run_command,
    machine_load,
    query,
    rig_options,
    try_reset,
    wait_resetting,
    wait_until,
)

from tests.timed_protocols import PLATEAU_MA, SESSION_S, cued_exercise, timed_gait

OBSERVE_S = 4.0
"""How long the output is watched after the fault: more than one 3 s gait cycle."""
DEGRADED_OBSERVE_S = 8.0
RECORD_LIMIT_MS = 1000 * (0.25 + 0.1 + TICK_S)
"""A locked record is found at the writer's next flush (every 0.25 s) once SQLite's busy
timeout (0.1 s) has passed; the output is then stopped within a tick."""
RESET_TRIES_S = 6.0
DAMAGED_RUNS = "about 50 usable samples/s; exercise needs 25"
"""The sensor watch's minimum rates (``controller.sensor_watch.MIN_RATE_HZ``) are 50 Hz
for gait and 25 Hz for exercise: half of 100 Hz is still usable in both modes, so that
row must not fault; 20 Hz is below both and must."""
MOMENT_TIMEOUT_S = 25.0

GAIT_PROTOCOL = timed_gait(
    "fault matrix: timed steps",
    "Bursts from a timer (3 s cycle, 1.35 s bursts, 0.5 s ramp-up): every moment comes.",
    ramp_up_s=0.5, ramp_down_s=0.3, sensor_frozen_s=0.5)
EXERCISE_PROTOCOL = cued_exercise(
    "fault matrix: cued holds",
    "Cued lifts on a timer (1 s rise, 2 s hold): a hold comes whatever the foot does.",
    sensor_frozen_s=0.5)


def _still_foot(path: Path) -> None:
    """A foot at rest with sensor noise (a cued exercise first measures the rest pose;
    a walk never holds still for it); noise, so it is not a frozen sensor."""
    rng = random.Random(3)
    lines = ["time_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z"]
    for i in range(6000):
        acc = [rng.gauss(0, 0.03), rng.gauss(0, 0.03), 9.81 + rng.gauss(0, 0.03)]
        gyro = [rng.gauss(0, 0.3) for _ in range(3)]
        lines.append(",".join([f"{i / 100:.2f}", *(f"{v:.4f}" for v in acc + gyro)]))
    path.write_text("\n".join(lines) + "\n")


# -- the rig of one row ---------------------------------------------------------------------

class Rig:
    """One row's processes: ``fes-sim`` (two for a killed stimulator: the stimulator's own,
    so killing it leaves the IMU streaming) and ``fes run`` on them."""

    def __init__(self, folder: Path, protocol: Path, exercise: bool, split: bool) -> None:
        walk = ("--walk", str(folder.parent / "still_foot_imu.csv")) if exercise else ()
        self.db = folder / "record.sqlite"
        self.sim = Simulator(folder, "sim", *walk)
        self.stim_sim = Simulator(folder, "stim") if split else self.sim
        self.controller = Controller(
            fes_run_command(self.stim_sim.stimulator, self.sim.imu, protocol, self.db,
                            SESSION_S), folder / "controller.txt")
        self.lock: sqlite3.Connection | None = None
        self.zero_at_s: float | None = None
        """Set when the device itself is gone: it delivers nothing from then on."""

    @property
    def log(self) -> DeliveredLog:
        return self.stim_sim.log

    def close(self) -> int:
        code = self.controller.finish()
        if self.lock is not None:
            self.lock.close()
        for sim in {id(self.sim): self.sim, id(self.stim_sim): self.stim_sim}.values():
            sim.close()
        return code


# -- faults -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[Rig], None]
    clear: Callable[[Rig], None] | None
    """Undo the cause (None: it cannot be undone, or it is over at once)."""
    lasting: bool
    """The cause lasts until cleared, so a reset must be refused meanwhile."""
    reach: str
    """"controller": it can still stop the device (zero within a tick of its fault);
    "device": the device stops itself; "watchdog": only the device's watchdog can;
    "gone": the device is gone; "ends": the session ends (emergency stop, record);
    "runs": not a fault, the session must run on; "record": the record cannot be written,
    so its fault cannot be in it either: the session's summary must name it."""
    observe_s: float = OBSERVE_S
    """A degraded stream is judged over a window of seconds, so it is watched longer."""
    runs_in: tuple[str, ...] = ()
    """Moments at which this is no fault: a stream that keeps 50 usable samples a second
    is below gait's minimum rate but twice the exercise mode's (25 Hz)."""
    why_runs: str = ""
    """Why the session must run on where this is no fault (the row's target)."""

    def expected(self, moment: str) -> str:
        return "runs" if moment in self.runs_in or self.reach == "runs" else self.reach


def _sim(command: str, device: str = "") -> Callable[[Rig], None]:
    def run(rig: Rig) -> None:
        (rig.stim_sim if device == "stim" else rig.sim).command(command)
    return run


def _kill_stimulator(rig: Rig) -> None:
    rig.stim_sim.process.kill()
    rig.zero_at_s = time.monotonic()
    rig.stim_sim.process.wait()


def _sigstop(rig: Rig) -> None:
    rig.controller.signal(signal.SIGSTOP)
    time.sleep(2.0)
    rig.controller.signal(signal.SIGCONT)


def _lock_record(rig: Rig) -> None:
    rig.lock = sqlite3.connect(rig.db, timeout=5.0, isolation_level=None)
    rig.lock.execute("BEGIN EXCLUSIVE")


def _unlock_record(rig: Rig) -> None:
    if rig.lock is not None:
        rig.lock.rollback()


FAULTS = [
    Fault("imu stall", _sim("imu stall"), _sim("imu ok"), True, "controller"),
    Fault("imu freeze", _sim("imu freeze"), _sim("imu ok"), True, "controller"),
    Fault("imu garbage 400 B", _sim("imu garbage 400"), None, False, "controller"),
    Fault("imu 30 % corrupt", _sim("imu corrupt 0.3"), _sim("imu ok"), True, "controller",
          observe_s=DEGRADED_OBSERVE_S, runs_in=("hold",), why_runs=DAMAGED_RUNS),
    Fault("imu 30 % swapped bytes", _sim("imu swap 0.3"), _sim("imu ok"), True, "controller",
          observe_s=DEGRADED_OBSERVE_S),
    Fault("imu stuck at full scale", _sim("imu saturate"), _sim("imu ok"), True, "controller"),
    Fault("imu half rate", _sim("imu rate 50"), _sim("imu rate 100"), True, "runs",
          why_runs="50 Hz: gait needs 50, exercise 25"),
    Fault("imu at 20 Hz", _sim("imu rate 20"), _sim("imu rate 100"), True, "controller"),
    Fault("imu port closed", _sim("imu vanish"), None, True, "controller"),
    Fault("stim late 0.3 s", _sim("stim late 0.3", "stim"), _sim("stim ok", "stim"), True,
          "controller"),
    Fault("stim refuses", _sim("stim refuse", "stim"), _sim("stim ok", "stim"), True,
          "watchdog"),  # it refuses the stop too: only its own watchdog can stop it
    Fault("stim electrode error", _sim("stim error electrode", "stim"), None, False,
          "device"),
    Fault("stim garbage 400 B", _sim("stim garbage 400", "stim"), None, False, "runs",
          why_runs="skipped by the decoder while the answers keep coming"),
    Fault("stim stops answering", _sim("stim silent", "stim"), _sim("stim ok", "stim"), True,
          "watchdog"),
    Fault("stim port closed", _sim("stim vanish", "stim"), None, True, "watchdog"),
    Fault("stim process killed", _kill_stimulator, None, True, "gone"),
    Fault("controller SIGSTOP 2 s", _sigstop, None, False, "watchdog"),
    Fault("SIGTERM (emergency stop)", lambda rig: rig.controller.signal(signal.SIGTERM),
          None, False, "ends"),
    Fault("record locked", _lock_record, _unlock_record, True, "record"),
]


# -- moments --------------------------------------------------------------------------------

def _stance(log: DeliveredLog) -> bool:
    changes = log.since(0.0)
    return (len(changes) > 2 and changes[-1].current_ma == 0
            and time.monotonic() - changes[-1].t_s >= 0.3)


def _ramp(log: DeliveredLog) -> bool:
    changes = log.since(0.0)
    return (len(changes) >= 2 and 6 <= changes[-1].current_ma <= 18
            and changes[-1].current_ma > changes[-2].current_ma)


def _held(seconds: float) -> Callable[[DeliveredLog], bool]:
    def at_plateau(log: DeliveredLog) -> bool:
        changes = log.since(0.0)
        return bool(changes) and changes[-1].current_ma == PLATEAU_MA \
            and time.monotonic() - changes[-1].t_s >= seconds
    return at_plateau


MOMENTS: dict[str, Callable[[DeliveredLog], bool]] = {
    "stance": _stance, "ramp": _ramp, "swing": _held(0.15), "hold": _held(1.0)}


# -- one row --------------------------------------------------------------------------------

@dataclass
class Result:
    fault: str
    moment: str
    output_at_fault_ma: int
    fault_kinds: list[str]
    inject_to_zero_ms: float | None
    """None: the output was already off and stayed off."""
    fault_to_zero_ms: float | None
    stopped_by: str
    stayed_off: bool
    reset_while_cause: str
    reset_after_clear: str
    exit_code: int
    target: str
    met: bool
    note: str = ""


def _zero(changes: list[Change], on_at_inject: int, fault_s: float | None
          ) -> tuple[Change | None, bool]:
    """The change that took the output to zero after the injection (None if it was off
    and nothing came on before the fault), and whether it stayed off after that."""
    came_on_before_fault = [c for c in changes if c.current_ma
                            and (fault_s is None or c.t_s <= fault_s + TICK_S)]
    if not on_at_inject and not came_on_before_fault:
        return None, not any(c.current_ma for c in changes)
    after = came_on_before_fault[-1].t_s if came_on_before_fault else 0.0
    zero = next((c for c in changes if c.current_ma == 0 and c.t_s >= after), None)
    if zero is None:
        return None, False
    return zero, not any(c.current_ma for c in changes if c.t_s > zero.t_s)


def run_row(fault: Fault, moment: str, folder: Path) -> Result:
    exercise = moment == "hold"
    protocol = folder.parent / ("exercise.toml" if exercise else "gait.toml")
    rig = Rig(folder, protocol, exercise, split=fault.name == "stim process killed")
    try:
        reached, early_faults = wait_resetting(lambda: MOMENTS[moment](rig.log),
                                               rig.controller, rig.db, MOMENT_TIMEOUT_S)
        if not reached:
            rig.close()
            return Result(fault.name, moment, 0, [], None, None, "", False, "", "", -1, "",
                          False, f"moment not reached ({early_faults} faults before it); "
                                 f"controller said: {rig.controller.output()[-300:]!r}")
        inject_s = time.monotonic()
        on_at_inject = rig.log.output_at(inject_s)
        fault.inject(rig)
        watch_from_s = time.monotonic() if fault.name.startswith("controller") else inject_s
        faults = wait_until(lambda: query(
            rig.db, "SELECT t_s, kind FROM faults WHERE t_s >= ? ORDER BY t_s",
            (inject_s - TICK_S,)), timeout_s=3.0) or []
        time.sleep(max(0.0, watch_from_s + fault.observe_s - time.monotonic()))
        observed_until_s = time.monotonic()
        running = rig.controller.process.poll() is None
        while_cause = try_reset(rig.controller, rig.db, 0.0) if running and fault.lasting else "—"
        if fault.clear is not None:
            fault.clear(rig)
        running = rig.controller.process.poll() is None
        after_clear = try_reset(rig.controller, rig.db, RESET_TRIES_S) \
            if running and fault.reach not in ("gone",) and (fault.clear or not fault.lasting) \
            else "—"
        faults = query(rig.db, "SELECT t_s, kind FROM faults WHERE t_s >= ? ORDER BY t_s",
                       (inject_s - TICK_S,)) or faults
        later = [kind for t_s, kind in faults if t_s > observed_until_s]
        if later:
            after_clear += f" (then {', '.join(dict.fromkeys(later))})"
        faults = [(t_s, kind) for t_s, kind in faults if t_s <= observed_until_s]
    finally:
        code = rig.close()
    told = fault.reach == "record" and "record_failed" in rig.controller.output()
    fault_s = faults[0][0] if faults else None
    changes = [c for c in rig.log.since(inject_s) if c.t_s <= observed_until_s]
    zero, stayed_off = _zero(changes, on_at_inject, fault_s)
    zero_s = rig.zero_at_s if rig.zero_at_s is not None else (zero.t_s if zero else None)
    stopped_by = "process killed" if rig.zero_at_s is not None else (
        zero.reason if zero else ("was off" if stayed_off else "still on"))
    if rig.zero_at_s is not None:
        stayed_off = True
    kinds = list(dict.fromkeys(kind for _, kind in faults))
    if told:
        kinds.append("record_failed (in the summary)")
    result = Result(
        fault.name, moment, on_at_inject, kinds,
        None if zero_s is None else 1000 * (zero_s - inject_s),
        None if zero_s is None or fault_s is None else 1000 * (zero_s - fault_s),
        stopped_by, stayed_off, while_cause, after_clear, code, "", False)
    _judge(result, fault.expected(moment), fault.why_runs, fault.lasting, zero_s)
    if early_faults:
        result.note += f" ({early_faults} unprovoked fault(s) reset before the moment)"
    return result


def _judge(result: Result, reach: str, why_runs: str, lasting: bool,
           zero_s: float | None) -> None:
    """Set the row's target and whether it is met, saying why not."""
    off_already = zero_s is None and result.stayed_off
    problems = []
    if reach == "runs":
        result.target = f"runs on ({why_runs})"
        if result.fault_kinds:
            problems.append("a fault where none is due")
        result.met = not problems
        result.note = "; ".join(problems)
        return
    if not result.stayed_off:
        problems.append("output on after the fault" if zero_s is not None else "never off")
    if not result.fault_kinds:
        problems.append("no fault recorded")
    if reach in ("controller", "ends", "device"):
        result.target = "zero <= 1 tick after the fault"
        if not off_already and (result.fault_to_zero_ms is None
                                or result.fault_to_zero_ms > 1000 * TICK_S):
            problems.append("zero later than a tick after the fault")
    elif reach == "record":
        result.target = "zero <= flush 0.25 s + busy timeout 0.1 s + 1 tick of the lock"
        if not off_already and (result.inject_to_zero_ms is None
                                or result.inject_to_zero_ms > RECORD_LIMIT_MS):
            problems.append("zero later than the record's limit")
    elif reach == "watchdog":
        result.target = f"zero <= device watchdog {SIM_WATCHDOG_S:g} s + 1 tick"
        limit_ms = 1000 * (SIM_WATCHDOG_S + TICK_S)
        if not off_already and (result.inject_to_zero_ms is None
                                or result.inject_to_zero_ms > limit_ms):
            problems.append("zero later than the device watchdog")
    else:
        result.target = "device gone; fault recorded"
    if lasting and result.reset_while_cause == "accepted":
        problems.append("reset accepted while the cause lasts")
    result.met = not problems
    result.note = "; ".join(problems)


# -- the table ------------------------------------------------------------------------------

def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def print_table(results: list[Result], console: Console, title: str) -> None:
    table = Table("fault", "moment", "mA at", "inject→0 ms", "fault→0 ms", "stopped by",
                  "latched", "recorded", "reset, cause on", "reset, cleared", "target", "met",
                  title=title)
    for r in results:
        table.add_row(r.fault, r.moment, str(r.output_at_fault_ma), _ms(r.inject_to_zero_ms),
                      _ms(r.fault_to_zero_ms), r.stopped_by, "yes" if r.stayed_off else "NO",
                      ", ".join(r.fault_kinds) or "none", r.reset_while_cause,
                      r.reset_after_clear, r.target,
                      "yes" if r.met else f"[red]NO[/]: {r.note}")
    console.print(table)
    met = sum(r.met for r in results)
    console.print(f"{met} of {len(results)} rows meet their target", highlight=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="every fault at one moment (full output in swing)")
    parser.add_argument("--faults", help="comma-separated fault names (default: all)")
    parser.add_argument("--moments", help=f"comma-separated, of {', '.join(MOMENTS)}")
    args = rig_options(parser)
    faults = FAULTS
    if args.faults:
        wanted = [name.strip() for name in args.faults.split(",")]
        unknown = [name for name in wanted if name not in {f.name for f in FAULTS}]
        if unknown:
            parser.error(f"unknown fault(s) {unknown}; known: {[f.name for f in FAULTS]}")
        faults = [f for f in FAULTS if f.name in wanted]
    moments = ["swing"] if args.quick else list(MOMENTS)
    if args.moments:
        moments = [m.strip() for m in args.moments.split(",")]
        if not set(moments) <= set(MOMENTS):
            parser.error(f"moments are {', '.join(MOMENTS)}")
    console = Console(width=220)
    load_before = machine_load()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="fes-faults-") as tmp:
        root = Path(tmp)
        (root / "gait.toml").write_text(GAIT_PROTOCOL)
        (root / "exercise.toml").write_text(EXERCISE_PROTOCOL)
        _still_foot(root / "still_foot_imu.csv")
        for n, (fault, moment) in enumerate((f, m) for f in faults for m in moments):
            folder = root / f"row{n}"
            folder.mkdir()
            results.append(run_row(fault, moment, folder))
            r = results[-1]
            console.print(f"{fault.name} @ {moment}: {r.stopped_by}, inject→0 "
                          f"{_ms(r.inject_to_zero_ms)} ms, fault→0 {_ms(r.fault_to_zero_ms)} ms, "
                          f"{r.fault_kinds}, met {r.met} {r.note}", highlight=False)
    title = f"fault matrix ({load_before} before, {machine_load()} after)"
    print_table(results, console, title)
    if args.json is not None:
        args.json.write_text(json.dumps({"load_before": load_before,
                                         "load_after": machine_load(),
                                         "rows": [asdict(r) for r in results]}, indent=2))
    return 0 if all(r.met for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
