"""The ``fes`` command line.

Exit codes: 0 the session completed (or was stopped by its user) without a fault; 1 it
ended with a fault or an emergency stop; 2 the input was refused (bad protocol, missing
file, bad option).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from queue import SimpleQueue
from types import FrameType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from controller.assembly.simulated import (
    SimulatedRig,
    build_simulated_session,
    parse_injection,
    patient_for,
    recorded_walk,
    simulate_exercise,
)
from controller.assembly.urls import DeviceUrlError, open_motion_sensor
from controller.cli_records import add_record_commands
from controller.clock import MonotonicClock
from controller.detect.calibration import CalibrationError, GaitCalibration, calibrate
from controller.detect.calibration_file import (
    CalibrationFileError,
    load_calibration,
    save_calibration,
)
from controller.devices.base import DeviceError
from controller.devices.recording import RecordingFormatError
from controller.observe import SessionObserver
from controller.record import RecordOpenError, default_db_path
from controller.runner import SessionRunner
from controller.safety import TRIM_MARGIN, LimitViolation
from controller.terminal_keys import HELP as KEYS_HELP
from controller.terminal_keys import TerminalKeys
from controller.types import Cue, Sample, SessionSummary, StatusLine
from protocols import ExerciseProtocol, GaitProtocol, Protocol, ProtocolError, load_protocol
from protocols.duty import CADENCE_RANGE_SPM, check_gait, gait_on_time, stride_range_s
from protocols.loader import LIBRARY, library_protocols
from simulator import BUNDLED_WALK
from simulator.limb import ANATOMICAL_LIMIT_DEG
from simulator.synthetic import synthetic_walk

EXIT_OK, EXIT_FAULT, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_PROTOCOL = LIBRARY / "peroneal_gait_gyro.toml"
LIMB_SETTLE_S = 2.0
"""Time the synthetic limb's session spends before its first cue (calibration)."""
STUCK_LOOP_GRACE_S = 2.0
"""After an emergency stop, how long the command line waits for a stuck control loop to
finish its record before it exits anyway (output was stopped at once)."""

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


class InputError(Exception):
    """Refused input; the message is printed as is and the exit code is 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except (InputError, ProtocolError, RecordingFormatError, CalibrationFileError,
            LimitViolation, RecordOpenError, LookupError) as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return EXIT_BAD_INPUT
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fes", description="FES foot-drop controller (research tool, not a certified "
        "medical device).")
    commands = parser.add_subparsers(dest="command", required=True)

    simulate = commands.add_parser(
        "simulate", help="run a supervised gait or exercise session on the built-in simulator")
    simulate.add_argument("--data", type=Path, default=None,
                          help="a recording in the layout of the shared data (default: the "
                          "bundled walk for gait, the synthetic limb for an exercise)")
    simulate.add_argument("--synthetic", choices=("foot", "shank"),
                          help="walk on a synthetic gait of a foot- or shank-worn sensor "
                          "(randomly mounted) instead of a recording")
    simulate.add_argument("--cadence", type=float, default=105.0, metavar="STEPS_PER_MIN",
                          help="cadence of the synthetic walk (default: 105)")
    simulate.add_argument("--foot", "--side", choices=("left", "right"), dest="foot",
                          help="which side of the recording (default: the protocol's leg)")
    simulate.add_argument("--own-rom", type=float, metavar="DEG", dest="own_rom_deg",
                          help="exercise on the synthetic limb: the patient's own range of "
                          "motion (default: suits the pairing; 0 does not move)")
    simulate.add_argument("--realtime", action="store_true",
                          help="pace the session to the wall clock instead of running fast")
    simulate.add_argument("--inject", action="append", default=[], metavar="KIND@T[+D]",
                          help="inject a sensor fault, e.g. silent@12 or frozen@8+2")
    _add_session_options(simulate, duration_default="protocol or end of the data")
    simulate.set_defaults(handler=_simulate)

    protocol = commands.add_parser("protocol", help="check or list protocols")
    protocol_commands = protocol.add_subparsers(dest="protocol_command", required=True)
    check = protocol_commands.add_parser(
        "check", help="validate a protocol file; for gait, its on-time over a cadence range")
    check.add_argument("file", type=Path)
    check.add_argument("--cadence", metavar="LOW-HIGH", type=_cadence_range,
                       default=CADENCE_RANGE_SPM,
                       help="steps per minute the walk may take (default: %(default)s)")
    check.set_defaults(handler=_protocol_check)
    listing = protocol_commands.add_parser("list", help="list the bundled protocols")
    listing.set_defaults(handler=_protocol_list)

    calibrate = commands.add_parser(
        "calibrate", help="calibrate the gait detector from a short walk")
    source = calibrate.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="a recorded walk, *_foot_imu.csv")
    source.add_argument("--imu", metavar="URL",
                        help="record the walk live from a sensor, e.g. serial:///dev/ttyUSB0")
    calibrate.add_argument("--foot", choices=("left", "right"), default="left",
                           help="which foot of the recording (default: left)")
    calibrate.add_argument("--seconds", type=float, default=20.0,
                           help="how long to record from --imu (default: 20)")
    calibrate.add_argument("--out", type=Path, required=True, help="calibration TOML to write")
    calibrate.set_defaults(handler=_calibrate)

    devices = commands.add_parser("devices", help="list serial ports and probe what answers")
    devices.add_argument("ports", nargs="*",
                         help="ports to probe (default: every serial port the system lists)")
    devices.set_defaults(handler=_devices)
    _add_run_parser(commands)
    add_record_commands(commands)
    gui = commands.add_parser("gui", help="the desktop application (on the simulator)")
    gui.add_argument("--db", type=Path, default=None,
                     help=f"session record (default: {default_db_path()})")
    gui.add_argument("--clinic", metavar="URL",
                     help="the clinic database (postgresql://…) the Review tab can read")
    gui.set_defaults(handler=_gui)
    return parser


def _gui(args: argparse.Namespace) -> int:
    from gui.app import run

    return run(args.db, args.clinic)


def _add_session_options(parser: argparse.ArgumentParser, duration_default: str) -> None:
    """What every supervised session takes, whatever its devices."""
    parser.add_argument("--protocol", type=Path, default=DEFAULT_PROTOCOL,
                        help="protocol TOML (default: the bundled peroneal gait protocol)")
    parser.add_argument("--duration", type=float, metavar="S",
                        help=f"stop after S seconds (default: {duration_default})")
    parser.add_argument("--calibration", type=Path, metavar="FILE",
                        help="gait calibration from fes calibrate (default: calibrate on the "
                        "first steps)")
    parser.add_argument("--db", type=Path, default=None,
                        help=f"session record (default: {default_db_path()})")
    parser.add_argument("--patient", help="pseudonymous patient id for the record")


# -- fes run -----------------------------------------------------------------------------

def _add_run_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run", help="run a supervised gait session on devices named by URL")
    run.add_argument("--stimulator", required=True, metavar="URL",
                     help="serial://PORT[?baud=N] (RehaStim 2) or sim://")
    run.add_argument("--imu", required=True, metavar="URL",
                     help="serial://PORT[?baud=N] (WitMotion), sim:// or "
                          "replay://FILE[?foot=left|right] (replayed in real time)")
    _add_session_options(run, duration_default="the protocol's duration")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from controller.assembly.hardware import DeviceOpenError, build_device_session

    protocol = load_protocol(args.protocol)
    try:
        rig = build_device_session(protocol, args.stimulator, args.imu,
                                   args.db or default_db_path(), duration_s=args.duration,
                                   patient=args.patient, calibration=_calibration(args))
    except DeviceOpenError as exc:
        raise InputError(str(exc)) from None
    console.print(f"[bold]{protocol.name}[/] with stimulator {args.stimulator} and IMU "
                  f"{args.imu} — research tool, not a certified medical device",
                  highlight=False)
    return _supervise(rig.runner, rig.start_s, rig.end_s, protocol)


def _calibration(args: argparse.Namespace) -> GaitCalibration | None:
    return load_calibration(args.calibration) if args.calibration else None


# -- fes calibrate -----------------------------------------------------------------------

def _calibrate(args: argparse.Namespace) -> int:
    if args.data is not None:
        if not args.data.exists():
            raise InputError(f"{args.data}: no such recording")
        samples = recorded_walk(args.data, args.foot)
        source = f"{args.data.name}#{args.foot}"
    else:
        samples = _record_live(args.imu, args.seconds)
        source = args.imu
    try:
        calibration = calibrate(samples)
    except CalibrationError as exc:
        raise InputError(f"{source}: {exc}") from None
    save_calibration(args.out, calibration, source)
    axis = ", ".join(f"{c:+.2f}" for c in calibration.axis)
    console.print(f"[green]calibrated[/] from {source}: sagittal axis ({axis}), swing peak "
                  f"{calibration.swing_peak_dps:.0f} °/s, stride {calibration.stride_s:.2f} s "
                  f"-> {args.out}", highlight=False)
    return EXIT_OK


def _record_live(url: str, seconds: float) -> list[Sample]:
    """Collect samples from a live sensor while the patient walks."""
    clock = MonotonicClock(0.01)
    try:
        sensor = open_motion_sensor(url, clock)
    except (DeviceUrlError, DeviceError) as exc:
        raise InputError(str(exc)) from None
    samples: list[Sample] = []
    end_s = clock.now() + seconds
    console.print(f"recording {seconds:g} s from {url}: walk now", highlight=False)
    try:
        while clock.next_tick() < end_s:
            samples.extend(sensor.read())
    except DeviceError as exc:
        raise InputError(f"{url}: {exc}") from None
    finally:
        sensor.close()
    return samples


# -- fes devices -------------------------------------------------------------------------

def _devices(args: argparse.Namespace) -> int:
    from controller.devices.probe import list_devices

    found = list_devices(args.ports or None)
    if not found:
        console.print("no serial ports found")
    for device in found:
        console.print(f"{device.port}\t{device.kind}\t{device.detail}\t{device.description}",
                      highlight=False)
    return EXIT_OK


# -- fes protocol ------------------------------------------------------------------------

def _cadence_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use LOW-HIGH steps/min, e.g. 60-120") \
            from None
    if not 10 <= low <= high <= 200:
        raise argparse.ArgumentTypeError(f"{text!r}: need 10 <= LOW <= HIGH <= 200 steps/min")
    return low, high


def _protocol_check(args: argparse.Namespace) -> int:
    protocol = load_protocol(args.file)
    if isinstance(protocol, GaitProtocol):
        problems = check_gait(protocol, args.cadence)
        _print_on_time(protocol, args.cadence)
        if problems:
            raise InputError(f"{args.file}: " + "; ".join(problems))
    console.print(f"[green]ok[/] {args.file}: {protocol.name!r}, {protocol.mode}, "
                  f"{len(protocol.channels)} channel(s), {_what_drives(protocol)}, "
                  f"{protocol.stimulation.frequency_hz:g} Hz", highlight=False)
    return EXIT_OK


def _print_on_time(protocol: GaitProtocol, cadence_range: tuple[float, float]) -> None:
    """Estimated on-time per stride across the cadence range, against the limit."""
    limit = protocol.stimulation.duty_cycle_max
    table = Table("steps/min", "stride s", "burst s", "on-time", "trimmed",
                  title=f"estimated on-time (limit {100 * limit:.0f} % over 60 s)")
    slow_s, fast_s = stride_range_s(protocol, cadence_range)
    for stride_s in sorted({slow_s, (slow_s + fast_s) / 2, fast_s}, reverse=True):
        on = gait_on_time(protocol, stride_s)
        trim = "" if on.full <= limit - TRIM_MARGIN else " (trimmed near the limit)"
        table.add_row(f"{on.cadence_spm:.0f}", f"{stride_s:.2f}",
                      f"{on.step_s + on.tail_s:.2f}", f"{100 * on.full:.0f} %{trim}",
                      f"{100 * on.trimmed:.0f} %")
    console.print(table)


def _protocol_list(args: argparse.Namespace) -> int:
    table = Table("file", "name", "mode", "driven by", "channels")
    for path in library_protocols():
        protocol = load_protocol(path)
        table.add_row(path.name, protocol.name, protocol.mode, _what_drives(protocol),
                      ", ".join(str(ch.channel) for ch in protocol.channels))
    console.print(table)
    return EXIT_OK


def _what_drives(protocol: Protocol) -> str:
    """The trigger of a gait protocol, the pairing and phases of an exercise."""
    if isinstance(protocol, GaitProtocol):
        return f"trigger {protocol.trigger.kind}"
    phases = "+".join(protocol.exercise.stimulate) or "measure only"
    return f"{protocol.exercise.pairing}, {phases}"


# -- fes simulate ------------------------------------------------------------------------

def _simulate(args: argparse.Namespace) -> int:
    protocol = load_protocol(args.protocol)
    try:
        injections = [parse_injection(text) for text in args.inject]
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if isinstance(protocol, ExerciseProtocol) and args.synthetic:
        raise InputError("--synthetic makes a walk; an exercise runs on the synthetic limb "
                         "when no --data is given")
    cues = CueFeed()
    if isinstance(protocol, ExerciseProtocol) and args.data is None:
        rig, source = _on_limb(protocol, args, cues)
        end_s = min(protocol.exercise.expected_s() + LIMB_SETTLE_S,
                    args.duration or protocol.session.duration_s)
    else:
        rig, source = _on_recording(protocol, args, cues)
        end_s = min(rig.motion.end_s - rig.motion.start_s,
                    args.duration or protocol.session.duration_s)
    for fault, at_s, duration_s in injections:
        rig.motion.inject(fault, at_s, duration_s)
    console.print(f"[bold]{protocol.name}[/] on {source}, simulated "
                  "RehaStim 2 — research tool, not a certified medical device", highlight=False)
    if isinstance(protocol, ExerciseProtocol):
        console.print(protocol.exercise.instruction, highlight=False)
    start_s = rig.motion.start_s
    return _supervise(rig.runner, start_s, start_s + end_s, protocol, cues)


def _on_recording(protocol: Protocol, args: argparse.Namespace,
                  cues: CueFeed) -> tuple[SimulatedRig, str]:
    """A walk or an exercise on recorded (or, for gait, synthetic) samples."""
    foot = args.foot or protocol.leg
    if args.synthetic:
        duration_s = args.duration or 60.0
        samples = synthetic_walk(duration_s + 1.0, cadence_steps_per_min=args.cadence,
                                 placement=args.synthetic, foot=foot,
                                 mounting="random").samples
        source = f"synthetic {args.synthetic}, {args.cadence:g} steps/min"
    else:
        data = args.data or BUNDLED_WALK
        if not data.exists():
            raise InputError(f"{data}: no such recording")
        samples = recorded_walk(data, foot)
        source = f"{data.name} ({foot} side)"
    try:
        rig = build_simulated_session(protocol, samples, args.db or default_db_path(),
                                      source=f"sim://{source}", duration_s=args.duration,
                                      realtime=args.realtime, patient=args.patient,
                                      calibration=_calibration(args), observers=[cues])
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from None
    return rig, source


def _on_limb(protocol: ExerciseProtocol, args: argparse.Namespace,
             cues: CueFeed) -> tuple[SimulatedRig, str]:
    script = patient_for(protocol)
    if args.own_rom_deg is not None:
        if not 0 <= args.own_rom_deg <= ANATOMICAL_LIMIT_DEG:
            raise InputError(f"--own-rom {args.own_rom_deg:g}: give 0 to "
                             f"{ANATOMICAL_LIMIT_DEG:g} degrees")
        script = replace(script, rom_deg=args.own_rom_deg)
    rig, _ = simulate_exercise(protocol, args.db or default_db_path(), script=script,
                               duration_s=args.duration, realtime=args.realtime,
                               patient=args.patient, observers=[cues])
    who = f"own range {script.rom_deg:g}°" if script.rom_deg else "no movement of their own"
    return rig, f"the synthetic limb ({who})"


def _supervise(make_runner: Callable[..., SessionRunner], start_s: float, end_s: float,
               protocol: Protocol, cues: CueFeed | None = None) -> int:
    """Run with a progress bar, a live status line, the cues and keys; print the summary."""
    latest: list[StatusLine] = []
    runner = make_runner(on_status=latest.append)
    summary = _run_with_progress(runner, latest, start_s, end_s, cues or CueFeed())
    if summary is None:
        errors.print("[bold red]error:[/] the control loop is not responding; output was "
                     "stopped at once and the session record may miss its last moments",
                     highlight=False)
        return EXIT_FAULT
    _print_summary(summary, protocol)
    ended_well = summary.status in ("completed", "stopped") and not summary.faults
    return EXIT_OK if ended_well else EXIT_FAULT


def _run_with_progress(runner: SessionRunner, latest: list[StatusLine], start_s: float,
                       end_s: float, cues: CueFeed) -> SessionSummary | None:
    """Ctrl-C or SIGTERM is an emergency stop that reaches the stimulator at once.

    None if the loop did not finish within a grace period after an emergency stop.
    """
    stopped_at: list[float] = []

    def emergency(signum: int, frame: FrameType | None) -> None:
        runner.emergency_stop(signal.Signals(signum).name)
        stopped_at.append(time.monotonic())

    previous = {sig: signal.signal(sig, emergency) for sig in (signal.SIGINT, signal.SIGTERM)}
    progress = Progress(TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.fields[status]}"), TimeRemainingColumn(),
                        console=console, transient=False)
    try:
        with progress, TerminalKeys(runner) as keys:
            task = progress.add_task("session", total=end_s - start_s, status="")
            if keys.active:
                progress.console.print(KEYS_HELP, highlight=False)
            runner.start()
            while (summary := runner.wait(0.1)) is None:
                for cue in cues.drain():
                    progress.console.print(_cue_text(cue), highlight=False)
                if latest:
                    line = latest[-1]
                    latest.clear()
                    progress.update(task, completed=line.t_s - start_s,
                                    status=_status_text(line))
                if stopped_at and time.monotonic() - stopped_at[0] > STUCK_LOOP_GRACE_S:
                    return None
            for cue in cues.drain():
                progress.console.print(_cue_text(cue), highlight=False)
            progress.update(task, completed=end_s - start_s,
                            status=_status_text(latest[-1]) if latest else "")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return summary


class CueFeed(SessionObserver):
    """Cues from the loop thread, printed by the command line's own thread."""

    def __init__(self) -> None:
        self._cues: SimpleQueue[Cue] = SimpleQueue()

    def on_cue(self, cue: Cue) -> None:
        self._cues.put(cue)

    def drain(self) -> list[Cue]:
        out = []
        while not self._cues.empty():
            out.append(self._cues.get_nowait())
        return out


def _cue_text(cue: Cue) -> str:
    return f"[cyan]{cue.t_s:7.1f} s  ▶ {escape(cue.text)}[/]"


def _status_text(line: StatusLine) -> str:
    output = " ".join(f"ch{ch} {ma:4.1f}/{line.setting_ma[ch]:g} mA"
                      for ch, ma in line.output_ma.items())
    counts = line.counts_text
    fault = f" [bold red]FAULT {line.latched[0].kind.value}[/]" if line.latched else ""
    paused = " [yellow]PAUSED[/]" if line.paused else ""
    return f"t={line.t_s:6.1f} s  {line.phase:<11} {output}  {counts}{paused}{fault}"


def _print_summary(summary: SessionSummary, protocol: Protocol) -> None:
    table = Table(title="session summary", show_header=False)
    table.add_row("status", summary.status)
    table.add_row("duration", f"{summary.duration_s:.1f} s ({summary.samples} samples)")
    for key, value in summary.figures.items():
        table.add_row(summary.labels.get(key, key.replace("_", " ")), f"{value:g}")
    sites = {ch.channel: ch.site for ch in protocol.channels}
    for channel, charge in summary.charge_uc.items():
        table.add_row(f"charge ch{channel}", f"{charge / 1000:.2f} mC ({sites[channel]})")
    faults = "\n".join(f"{f['t_s']:.2f} s {f['kind']}: {f['detail']}" for f in summary.faults)
    table.add_row("faults", faults or "none")
    for warning in summary.warnings:
        table.add_row("[yellow]warning[/]", escape(warning))
    table.add_row("record", f"{summary.record_path} (session {summary.session_id})")
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
