"""The ``fes`` command line.

Exit codes: 0 the session completed (or was stopped by its user) without a fault; 1 it
ended with a fault or an emergency stop; 2 the input was refused (bad protocol, missing
file, bad option, an option that does not apply); 130 Ctrl-C outside a session.

Start-up is kept short: a command's options (and the heavy modules their defaults come
from) are built only for the command being run, each handler imports what it uses, the
garbage collector waits until a session starts, and a session's first line is a plain
write made before rich (the progress bar) is imported.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from queue import SimpleQueue
from types import FrameType
from typing import TYPE_CHECKING, TextIO, cast

from controller.cli_records import RECORD_COMMANDS, CommandTable, station_record, with_handler
from controller.observe import SessionObserver
from controller.terminal_output import bounded
from controller.types import Cue

if TYPE_CHECKING:
    from rich.console import Console

    from controller.assembly.simulated import SimulatedRig
    from controller.detect.calibration import GaitCalibration
    from controller.runner import SessionRunner
    from controller.types import Sample, SessionSummary, StatusLine
    from protocols import ExerciseProtocol, GaitProtocol, Protocol
    from simulator.motion import MotionFault

EXIT_OK, EXIT_FAULT, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130
"""Ctrl-C outside a session (during one it is an emergency stop, exit 1)."""
DEFAULT_PROTOCOL_FILE = "peroneal_gait_gyro.toml"
LIMB_SETTLE_S = 2.0
"""Time the synthetic limb's session spends before its first cue (calibration)."""
STUCK_LOOP_GRACE_S = 2.0
"""After an emergency stop, how long the command line waits for a stuck control loop to
finish its record before it exits anyway (output was stopped at once)."""
SYNTHETIC_WALK_S = 60.0
"""Length of a synthetic walk when no --duration is given."""
MAX_DURATION_S = 24 * 3600.0
"""Longest --duration taken: longer is a typing mistake, not a session."""
CADENCE_LIMITS_SPM = (40.0, 160.0)
"""Cadences a synthetic walk is made at: a slow to a brisk walk."""
MAX_LIVE_CALIBRATION_S = 600.0
LIMB_START_S = 0.0
"""Where the synthetic limb's time starts (the time an --inject on it is counted from)."""
SESSION_COMMANDS = ("simulate", "run")
"""Commands whose output waits only a bounded time for its reader (see terminal_output)."""


class InputError(Exception):
    """Refused input; the message is printed as is and the exit code is 2."""


_session_streams: dict[str, TextIO] = {}
"""A session's standard output and error, each behind a bounded wait (set by ``main``)."""


@cache
def console() -> Console:
    from rich.console import Console

    return Console(file=_session_streams.get("out"), soft_wrap=True)


@cache
def errors() -> Console:
    from rich.console import Console

    return Console(file=_session_streams.get("err"), stderr=True, soft_wrap=True)


def _say(line: str) -> None:
    """A plain line on this command's output: a session's first lines go out before rich
    is imported (rich is a sixth of the time to the first line)."""
    out = _session_streams.get("out", sys.stdout)
    out.write(line + "\n")
    out.flush()


def default_protocol() -> Path:
    from protocols.loader import LIBRARY

    return LIBRARY / DEFAULT_PROTOCOL_FILE


def main(argv: Sequence[str] | None = None) -> int:
    # Before numpy loads: its OpenBLAS would start a thread per core (some 50 ms of CPU at
    # start) that then competes with the control loop; the arrays here are small.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    collecting = gc.isenabled()
    gc.disable()  # start-up builds thousands of objects and no garbage: ~10 % of it saved
    try:
        return _main(argv)
    finally:
        if collecting:
            gc.enable()


def _main(argv: Sequence[str] | None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = _parser(arguments).parse_args(arguments)
    if args.command not in SESSION_COMMANDS:
        gc.enable()  # the GUI, reports and exports run long; a session enables it to start
    console.cache_clear()  # consoles of this command, on this call's standard streams
    errors.cache_clear()
    _session_streams.clear()
    if args.command in SESSION_COMMANDS:
        _session_streams.update(out=cast(TextIO, bounded(sys.stdout)),
                                err=cast(TextIO, bounded(sys.stderr)))
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:  # before a session started or after it ended: nothing is on
        _print_error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if not isinstance(exc, _refusals()):
            raise
        _print_error(_plain(exc))
        return EXIT_BAD_INPUT
    return code


def _refusals() -> tuple[type[Exception], ...]:
    """What a handler raises for input it refuses: exit 2 with the message, no traceback."""
    from controller.detect.calibration_file import CalibrationFileError
    from controller.devices.recording import RecordingFormatError
    from controller.record import RecordOpenError
    from controller.safety_limits import LimitViolation
    from protocols import ProtocolError

    return (InputError, ProtocolError, RecordingFormatError, CalibrationFileError,
            LimitViolation, RecordOpenError, LookupError, OSError)


def _plain(exc: Exception) -> str:
    """The message of a refusal; for a file the system refused, the file and the reason."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)


def _print_error(message: str) -> None:
    from rich.markup import escape

    errors().print(f"[bold red]error:[/] {escape(message)}", highlight=False)


# -- the parser --------------------------------------------------------------------------

def _parser(arguments: Sequence[str]) -> argparse.ArgumentParser:
    """Every command is listed; only the one named in ``arguments`` gets its options."""
    parser = argparse.ArgumentParser(
        prog="fes", description="FES foot-drop controller (research tool, not a certified "
        "medical device).")
    commands = parser.add_subparsers(dest="command", required=True)
    chosen = next((word for word in arguments if not word.startswith("-")), None)
    for name, (summary, add_options) in {**COMMANDS, **RECORD_COMMANDS}.items():
        command = commands.add_parser(name, help=summary, description=summary)
        if name == chosen:
            add_options(command)
    return parser


def _number(low: float, high: float, unit: str, *,
            low_included: bool = True) -> Callable[[str], float]:
    """An argparse type: a finite number from ``low`` to ``high`` (nan, inf refused)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number ({unit})") from None
        above_low = value >= low if low_included else value > low
        if not (math.isfinite(value) and above_low and value <= high):
            bound = "from" if low_included else "above"
            raise argparse.ArgumentTypeError(
                f"{text!r}: give {bound} {low:g} to {high:g} {unit}")
        return value

    return parse


def _pseudonym(text: str) -> str:
    from controller.record import check_pseudonym

    try:
        return check_pseudonym(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_duration = _number(0, MAX_DURATION_S, "seconds", low_included=False)


def _add_simulate(simulate: argparse.ArgumentParser) -> None:
    simulate.add_argument("--data", type=Path, default=None,
                          help="a recording in the layout of the shared data (default: the "
                          "bundled walk for gait, the synthetic limb for an exercise)")
    simulate.add_argument("--synthetic", choices=("foot", "shank"),
                          help="walk on a synthetic gait of a foot- or shank-worn sensor "
                          "(randomly mounted) instead of a recording; gait protocols only")
    simulate.add_argument("--cadence", type=_number(*CADENCE_LIMITS_SPM, "steps/min"),
                          metavar="STEPS_PER_MIN",
                          help="cadence of the --synthetic walk (default: 105)")
    simulate.add_argument("--foot", "--side", choices=("left", "right"), dest="foot",
                          help="which side of the recording or synthetic walk (default: the "
                          "protocol's leg)")
    simulate.add_argument("--own-rom", type=float, metavar="DEG", dest="own_rom_deg",
                          help="exercise on the synthetic limb: the patient's own range of "
                          "motion (default: suits the pairing; 0 does not move)")
    simulate.add_argument("--realtime", action="store_true",
                          help="pace the session to the wall clock instead of running fast")
    simulate.add_argument("--inject", action="append", default=[], metavar="KIND@T[+D]",
                          help="inject a sensor fault at T seconds of the data, for D "
                          "seconds, e.g. silent@12 or frozen@8+2")
    _add_session_options(simulate, duration_default="protocol or end of the data")


def _add_protocol(protocol: argparse.ArgumentParser) -> None:
    from protocols.duty import CADENCE_RANGE_SPM

    protocol_commands = protocol.add_subparsers(dest="protocol_command", required=True)
    check = protocol_commands.add_parser(
        "check", help="validate a protocol file; for gait, its on-time over a cadence range")
    check.add_argument("file", type=Path)
    low_spm, high_spm = CADENCE_RANGE_SPM
    check.add_argument("--cadence", metavar="LOW-HIGH", type=_cadence_range,
                       help="gait protocols: steps per minute the walk may take (default: "
                       f"{low_spm:g}-{high_spm:g})")
    check.set_defaults(handler=_protocol_check)
    listing = protocol_commands.add_parser("list", help="list the bundled protocols")
    listing.set_defaults(handler=_protocol_list)


def _add_calibrate(calibrate: argparse.ArgumentParser) -> None:
    source = calibrate.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="a recorded walk, *_foot_imu.csv")
    source.add_argument("--imu", metavar="URL",
                        help="record the walk live from a sensor, e.g. serial:///dev/ttyUSB0")
    calibrate.add_argument("--foot", choices=("left", "right"),
                           help="which foot of the --data recording (default: left)")
    calibrate.add_argument("--seconds", type=_number(0, MAX_LIVE_CALIBRATION_S, "seconds",
                                                     low_included=False),
                           help="how long to record from --imu (default: 20)")
    calibrate.add_argument("--out", type=Path, required=True, help="calibration TOML to write")
    calibrate.add_argument("--overwrite", action="store_true",
                           help="replace --out if it exists (without this, an existing file "
                           "is refused and left as it is)")


def _add_devices(devices: argparse.ArgumentParser) -> None:
    devices.add_argument("ports", nargs="*",
                         help="ports to probe (default: every serial port the system lists)")


def _add_gui(gui: argparse.ArgumentParser) -> None:
    from controller.record import default_db_path

    gui.add_argument("--db", type=station_record, default=None,
                     help=f"session record (default: {default_db_path()})")
    gui.add_argument("--clinic", metavar="URL",
                     help="the clinic database (postgresql://…) the Review tab can read")


def _gui(args: argparse.Namespace) -> int:
    from controller.record import default_db_path, open_record

    if sys.platform.startswith("linux") and not any(
            os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        raise InputError("no display to open the window on (DISPLAY is not set); run it on a "
                         "desktop, or set QT_QPA_PLATFORM=offscreen for a test")
    if args.clinic is not None and not args.clinic.startswith(("postgresql://",
                                                                "postgres://")):
        raise InputError(f"--clinic {args.clinic}: the clinic database is given as "
                         "postgresql://USER@HOST/DATABASE")
    open_record(args.db or default_db_path()).close()  # a record it cannot use is refused here
    from gui.app import run

    return run(args.db, args.clinic)


def _add_session_options(parser: argparse.ArgumentParser, duration_default: str) -> None:
    """What every supervised session takes, whatever its devices."""
    from controller.record import default_db_path

    parser.add_argument("--protocol", type=Path, default=None,
                        help="protocol TOML (default: the bundled peroneal gait protocol, "
                        f"{DEFAULT_PROTOCOL_FILE})")
    parser.add_argument("--duration", type=_duration, metavar="S",
                        help=f"stop after S seconds, above 0 (default: {duration_default})")
    parser.add_argument("--calibration", type=Path, metavar="FILE",
                        help="gait calibration from fes calibrate (default: calibrate on the "
                        "first steps); gait protocols only")
    parser.add_argument("--db", type=station_record, default=None,
                        help=f"session record (default: {default_db_path()})")
    parser.add_argument("--patient", type=_pseudonym,
                        help="pseudonymous patient id for the record, e.g. P-017")


def _session_protocol(args: argparse.Namespace) -> Protocol:
    """The protocol of a session, after refusing a gait calibration for an exercise."""
    from protocols import ExerciseProtocol, load_protocol

    protocol = load_protocol(args.protocol or default_protocol())
    if args.calibration is not None and isinstance(protocol, ExerciseProtocol):
        raise InputError(f"--calibration is a gait calibration; the exercise protocol "
                         f"{protocol.name!r} does not use it")
    return protocol


# -- fes run -----------------------------------------------------------------------------

def _add_run(run: argparse.ArgumentParser) -> None:
    run.add_argument("--stimulator", required=True, metavar="URL",
                     help="serial://PORT[?baud=N] (RehaStim 2) or sim://")
    run.add_argument("--imu", required=True, metavar="URL",
                     help="serial://PORT[?baud=N] (WitMotion), sim:// or "
                          "replay://FILE[?foot=left|right] (replayed in real time)")
    _add_session_options(run, duration_default="the protocol's duration")


def _run(args: argparse.Namespace) -> int:
    from controller.assembly.hardware import DeviceOpenError, build_device_session
    from controller.record import default_db_path

    protocol = _session_protocol(args)
    try:
        rig = build_device_session(protocol, args.stimulator, args.imu,
                                   args.db or default_db_path(), duration_s=args.duration,
                                   patient=args.patient, calibration=_calibration(args))
    except DeviceOpenError as exc:
        raise InputError(str(exc)) from None
    _say(f"{protocol.name} with stimulator {args.stimulator} and IMU {args.imu} — research "
         "tool, not a certified medical device")
    return _supervise(rig.runner, rig.start_s, rig.end_s, protocol)


def _calibration(args: argparse.Namespace) -> GaitCalibration | None:
    if args.calibration is None:
        return None
    from controller.detect.calibration_file import load_calibration

    return load_calibration(args.calibration)


# -- fes calibrate -----------------------------------------------------------------------

def _calibrate(args: argparse.Namespace) -> int:
    from controller.assembly.simulated import recorded_walk
    from controller.detect.calibration import CalibrationError, calibrate
    from controller.detect.calibration_file import save_calibration

    _check_new_file(args.out, args.overwrite)
    if args.data is not None:
        if args.seconds is not None:
            raise InputError("--seconds applies to a live walk (--imu); a recording is "
                             "used whole")
        if not args.data.exists():
            raise InputError(f"{args.data}: no such recording")
        foot = args.foot or "left"
        samples = recorded_walk(args.data, foot)
        source = f"{args.data.name}#{foot}"
    else:
        if args.foot is not None:
            raise InputError("--foot picks a side of a two-foot recording (--data); a live "
                             "sensor is on one foot already")
        samples = _record_live(args.imu, args.seconds or 20.0)
        source = args.imu
    try:
        calibration = calibrate(samples)
    except CalibrationError as exc:
        raise InputError(f"{source}: {exc}") from None
    save_calibration(args.out, calibration, source)
    axis = ", ".join(f"{c:+.2f}" for c in calibration.axis)
    console().print(f"[green]calibrated[/] from {source}: sagittal axis ({axis}), swing peak "
                    f"{calibration.swing_peak_dps:.0f} °/s, stride "
                    f"{calibration.stride_s:.2f} s -> {args.out}", highlight=False)
    return EXIT_OK


def _check_new_file(path: Path, overwrite: bool) -> None:
    """Refuse, before any work, a file that cannot be written or would be replaced."""
    if path.is_dir():
        raise InputError(f"{path} is a folder: give the name of a file to write")
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists: choose another name, or give --overwrite to "
                         "replace it (nothing was written)")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: no such folder to write {path.name} into")


def _record_live(url: str, seconds: float) -> list[Sample]:
    """Collect samples from a live sensor while the patient walks."""
    from controller.assembly.urls import DeviceUrlError, open_motion_sensor
    from controller.clock import MonotonicClock
    from controller.devices.base import DeviceError

    scheme = url.partition("://")[0]
    if scheme in ("sim", "replay"):
        hint = (f"--data {url.partition('://')[2].partition('?')[0]}" if scheme == "replay"
                else "--data FILE (the bundled walk is simulator/data/*_foot_imu.csv)")
        raise InputError(f"{url}: fes calibrate --imu records a live walk from a sensor "
                         f"(serial://PORT); to calibrate from a recording give {hint}")
    clock = MonotonicClock(0.01)
    try:
        sensor = open_motion_sensor(url, clock)
    except (DeviceUrlError, DeviceError) as exc:
        raise InputError(str(exc)) from None
    samples: list[Sample] = []
    end_s = clock.now() + seconds
    console().print(f"recording {seconds:g} s from {url}: walk now", highlight=False)
    try:
        while clock.next_tick() < end_s:
            samples.extend(sensor.read())
    except (DeviceError, EOFError) as exc:
        raise InputError(f"{url}: the sensor stopped after {len(samples)} samples ({exc})") \
            from None
    finally:
        sensor.close()
    return samples


# -- fes devices -------------------------------------------------------------------------

def _devices(args: argparse.Namespace) -> int:
    from controller.devices.probe import list_devices

    missing = [port for port in args.ports if port.startswith("/") and not Path(port).exists()]
    if missing:
        raise InputError(f"{', '.join(missing)}: no such port (fes devices without ports "
                         "lists those the system has)")
    found = list_devices(args.ports or None)
    if not found:
        console().print("no serial ports found")
    for device in found:
        console().print(f"{device.port}\t{device.kind}\t{device.detail}\t"
                        f"{device.description}", highlight=False)
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
    from protocols import GaitProtocol, load_protocol
    from protocols.duty import CADENCE_RANGE_SPM, check_gait

    protocol = load_protocol(args.file)
    if isinstance(protocol, GaitProtocol):
        cadence_range = args.cadence or CADENCE_RANGE_SPM
        problems = check_gait(protocol, cadence_range)
        _print_on_time(protocol, cadence_range)
        if problems:
            raise InputError(f"{args.file}: " + "; ".join(problems))
    elif args.cadence is not None:
        raise InputError(f"--cadence checks a gait protocol's on-time; {args.file} is an "
                         f"exercise ({protocol.name!r})")
    console().print(f"[green]ok[/] {args.file}: {protocol.name!r}, {protocol.mode}, "
                    f"{len(protocol.channels)} channel(s), {_what_drives(protocol)}, "
                    f"{protocol.stimulation.frequency_hz:g} Hz", highlight=False)
    return EXIT_OK


def _print_on_time(protocol: GaitProtocol, cadence_range: tuple[float, float]) -> None:
    """Estimated on-time per stride across the cadence range, against the limit."""
    from rich.table import Table

    from controller.safety import TRIM_MARGIN
    from protocols.duty import gait_on_time, stride_range_s

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
    console().print(table)


def _protocol_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from protocols import load_protocol
    from protocols.loader import library_protocols

    table = Table("file", "name", "mode", "driven by", "channels")
    for path in library_protocols():
        protocol = load_protocol(path)
        table.add_row(path.name, protocol.name, protocol.mode, _what_drives(protocol),
                      ", ".join(str(ch.channel) for ch in protocol.channels))
    console().print(table)
    return EXIT_OK


def _what_drives(protocol: Protocol) -> str:
    """The trigger of a gait protocol, the pairing and phases of an exercise."""
    from protocols import GaitProtocol

    if isinstance(protocol, GaitProtocol):
        return f"trigger {protocol.trigger.kind}"
    phases = "+".join(protocol.exercise.stimulate) or "measure only"
    return f"{protocol.exercise.pairing}, {phases}"


# -- fes simulate ------------------------------------------------------------------------

def _simulate(args: argparse.Namespace) -> int:
    from protocols import ExerciseProtocol

    protocol = _session_protocol(args)
    _refuse_unused(args, protocol)
    until_s = args.duration or protocol.session.duration_s
    cues = CueFeed()
    if isinstance(protocol, ExerciseProtocol) and args.data is None:
        end_s = min(protocol.exercise.expected_s() + LIMB_SETTLE_S, until_s)
        injections = _injections(args.inject, LIMB_START_S + end_s)
        rig, source = _on_limb(protocol, args, cues)
    else:
        samples, source = _samples(protocol, args)
        end_s = min(samples[-1].t_s - samples[0].t_s, until_s)
        injections = _injections(args.inject, samples[0].t_s + end_s)
        rig = _on_samples(protocol, args, samples, source, cues)
    for fault, at_s, duration_s in injections:
        rig.motion.inject(fault, at_s, duration_s)
    _say(f"{protocol.name} on {source}, simulated RehaStim 2 — research tool, not a "
         "certified medical device")
    if isinstance(protocol, ExerciseProtocol):
        _say(protocol.exercise.instruction)
    start_s = rig.motion.start_s
    return _supervise(rig.runner, start_s, start_s + end_s, protocol, cues)


def _injections(texts: list[str], last_s: float) -> list[tuple[MotionFault, float, float]]:
    """The --inject faults, each refused unless it falls inside the session (checked before
    the session is built, so a refusal leaves nothing in the record)."""
    from controller.assembly.simulated import parse_injection

    injections = []
    for text in texts:
        try:
            fault, at_s, duration_s = parse_injection(text)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if not (0 <= at_s < last_s and duration_s > 0):
            raise InputError(f"--inject {text}: give a time T inside the session (0 to "
                             f"{last_s:g} s of the data) and a duration D above 0")
        injections.append((fault, at_s, duration_s))
    return injections


def _refuse_unused(args: argparse.Namespace, protocol: Protocol) -> None:
    """An option that would be silently ignored with the others given is refused, named."""
    from protocols import ExerciseProtocol

    exercise = isinstance(protocol, ExerciseProtocol)
    on_limb = exercise and args.data is None
    refusals = (
        (args.synthetic and args.data is not None,
         "--synthetic and --data are two sources of samples: give one of them"),
        (args.synthetic and exercise,
         ("--synthetic makes a walk; an exercise runs on the synthetic limb when no --data is "
         "given")),
        (args.cadence is not None and not args.synthetic,
         ("--cadence sets the pace of a --synthetic walk; it does not apply without "
         "--synthetic")),
        (args.own_rom_deg is not None and not on_limb,
         ("--own-rom applies to an exercise on the synthetic limb (an exercise protocol and "
         "no --data)")),
        (args.foot is not None and on_limb,
         ("--side picks a side of a recording or a synthetic walk; it does not apply to the "
         "synthetic limb")),
    )
    for refused, message in refusals:
        if refused:
            raise InputError(message)


def _samples(protocol: Protocol, args: argparse.Namespace) -> tuple[list[Sample], str]:
    """A recorded (or, for gait, synthetic) walk, or an exercise's recording."""
    from controller.assembly.simulated import recorded_walk
    from simulator import BUNDLED_WALK

    foot = args.foot or protocol.leg
    if args.synthetic:
        from simulator.synthetic import synthetic_walk

        cadence_spm = args.cadence or 105.0
        walk_s = min(args.duration or SYNTHETIC_WALK_S, protocol.session.duration_s)
        return (synthetic_walk(walk_s + 1.0, cadence_steps_per_min=cadence_spm,
                               placement=args.synthetic, foot=foot, mounting="random").samples,
                f"synthetic {args.synthetic}, {cadence_spm:g} steps/min")
    data = args.data or BUNDLED_WALK
    if not data.is_file():
        raise InputError(f"{data}: no such recording")
    samples = recorded_walk(data, foot)
    if len(samples) < 2:
        raise InputError(f"{data}: no walk in this recording ({len(samples)} samples)")
    return samples, f"{data.name} ({foot} side)"


def _on_samples(protocol: Protocol, args: argparse.Namespace, samples: list[Sample],
                source: str, cues: CueFeed) -> SimulatedRig:
    from controller.assembly.simulated import build_simulated_session
    from controller.record import default_db_path

    try:
        return build_simulated_session(protocol, samples, args.db or default_db_path(),
                                       source=f"sim://{source}", duration_s=args.duration,
                                       realtime=args.realtime, patient=args.patient,
                                       calibration=_calibration(args), observers=[cues])
    except ValueError as exc:
        raise InputError(f"{source}: {exc}") from None


def _on_limb(protocol: ExerciseProtocol, args: argparse.Namespace,
             cues: CueFeed) -> tuple[SimulatedRig, str]:
    from controller.assembly.simulated import patient_for, simulate_exercise
    from controller.record import default_db_path
    from simulator.limb import ANATOMICAL_LIMIT_DEG

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
    gc.enable()  # a session runs with the collector on (the runner freezes what setup made)
    runner = make_runner(on_status=latest.append)
    summary = _run_with_progress(runner, latest, start_s, end_s, cues or CueFeed())
    if summary is None:
        _print_error("the control loop is not responding; output was stopped at once and "
                     "the session record may miss its last moments")
        return EXIT_FAULT
    _print_summary(summary, protocol)
    ended_well = summary.status in ("completed", "stopped") and not summary.faults
    return EXIT_OK if ended_well else EXIT_FAULT


def _run_with_progress(runner: SessionRunner, latest: list[StatusLine], start_s: float,
                       end_s: float, cues: CueFeed) -> SessionSummary | None:
    """Ctrl-C or SIGTERM is an emergency stop that reaches the stimulator at once.

    None if the loop did not finish within a grace period after an emergency stop.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from controller.terminal_keys import HELP as KEYS_HELP
    from controller.terminal_keys import TerminalKeys

    stopped_at: list[float] = []

    def emergency(signum: int, frame: FrameType | None) -> None:
        runner.emergency_stop(signal.Signals(signum).name)
        stopped_at.append(time.monotonic())

    previous = {sig: signal.signal(sig, emergency) for sig in (signal.SIGINT, signal.SIGTERM)}
    progress = Progress(TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.fields[status]}"), TimeRemainingColumn(),
                        console=console(), transient=False)
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
    from rich.markup import escape

    return f"[cyan]{cue.t_s:7.1f} s  ▶ {escape(cue.text)}[/]"


def _status_text(line: StatusLine) -> str:
    output = " ".join(f"ch{ch} {ma:4.1f}/{line.setting_ma[ch]:g} mA"
                      for ch, ma in line.output_ma.items())
    counts = line.counts_text
    fault = f" [bold red]FAULT {line.latched[0].kind.value}[/]" if line.latched else ""
    paused = " [yellow]PAUSED[/]" if line.paused else ""
    resetting = " [yellow]reset in progress[/]" if line.resetting else ""
    return f"t={line.t_s:6.1f} s  {line.phase:<11} {output}  {counts}{paused}{fault}{resetting}"


def _print_summary(summary: SessionSummary, protocol: Protocol) -> None:
    from rich.markup import escape
    from rich.table import Table

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
    console().print(table)


COMMANDS: CommandTable = {
    "simulate": ("run a supervised gait or exercise session on the built-in simulator",
                 with_handler(_add_simulate, _simulate)),
    "protocol": ("check or list protocols", _add_protocol),
    "calibrate": ("calibrate the gait detector from a short walk",
                  with_handler(_add_calibrate, _calibrate)),
    "devices": ("list serial ports and probe what answers", with_handler(_add_devices,
                                                                          _devices)),
    "run": ("run a supervised gait or exercise session on devices named by URL",
            with_handler(_add_run, _run)),
    "gui": ("the desktop application (on the simulator)", with_handler(_add_gui, _gui)),
}


if __name__ == "__main__":
    sys.exit(main())
