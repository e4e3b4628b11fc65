"""The ``fes`` commands that read records back: sessions, replay (and the record's other
readers, wired here as they come).

A record is named by ``--db``: a station's SQLite file, or ``postgresql://…`` for the
clinic database.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from controller.record import RecordSource
    from controller.replay import Difference

CommandTable = dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]]
"""A command's name, its one-line help, and what adds its options (only for the command
being run, so that start-up imports nothing a command does not use)."""


def with_handler(add_options: Callable[[argparse.ArgumentParser], None],
                 handler: Callable[[argparse.Namespace], int]
                 ) -> Callable[[argparse.ArgumentParser], None]:
    """Add a command's options and the handler that runs it."""

    def add(parser: argparse.ArgumentParser) -> None:
        add_options(parser)
        parser.set_defaults(handler=handler)

    return add


def station_record(text: str) -> Path:
    """An argparse type: a station's record is a file; a URL is refused, not made a folder."""
    if "://" in text:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a file; sessions are written to this station's record and "
            "reach the clinic database with fes sync")
    return Path(text)


@cache
def console() -> Console:
    from rich.console import Console

    return Console(soft_wrap=True)


SHOWN_DIFFERENCES = 20
STATUS_STYLE = {"completed": "green", "stopped": "green", "running": "cyan",
                "interrupted": "yellow", "faulted": "red", "failed": "red",
                "emergency_stop": "red"}


def _add_sessions(sessions: argparse.ArgumentParser) -> None:
    sessions.add_argument("--patient", help="only this patient's sessions")
    _add_source(sessions)


def _add_replay(again: argparse.ArgumentParser) -> None:
    again.add_argument("session", help="the session's number or UUID (fes sessions lists them)")
    _add_source(again)


def _add_sync(sync: argparse.ArgumentParser) -> None:
    from controller.record import default_db_path

    sync.add_argument("--to", required=True, metavar="URL",
                      help="the clinic database, postgresql://USER@HOST/DATABASE")
    sync.add_argument("--db", type=station_record, default=None,
                      help=f"this station's record (default: {default_db_path()})")
    sync.add_argument("--station", help="the name the sessions are filed under (default: "
                      "this computer's name)")


def _add_report(report: argparse.ArgumentParser) -> None:
    report.add_argument("--patient", help="this patient's sessions and progress")
    report.add_argument("--session", help="one session (its number or UUID)")
    report.add_argument("--out", type=Path, required=True, help="folder to write into")
    _add_source(report)


def _add_export(export: argparse.ArgumentParser) -> None:
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--session", help="one session (its number or UUID)")
    which.add_argument("--patient", help="every session of this patient")
    which.add_argument("--all", action="store_true", help="every session in the record")
    export.add_argument("--format", choices=("csv", "parquet"), default="csv",
                        help="file format (default: csv)")
    export.add_argument("--out", type=Path, required=True, help="folder to write into")
    _add_source(export)


def _add_import(imported: argparse.ArgumentParser) -> None:
    imported.add_argument("file", type=Path, help="a CSV recording or an exported session")
    imported.add_argument("--foot", choices=("left", "right"), default="left",
                          help="which foot of a two-foot recording (default: left)")
    imported.add_argument("--out", type=Path, help="write it as a one-sensor CSV here")


def _add_source(parser: argparse.ArgumentParser) -> None:
    from controller.record import default_db_path

    parser.add_argument("--db", default=None, metavar="FILE|URL",
                        help=f"the record: a file (default: {default_db_path()}) or the "
                        "clinic database, postgresql://…")


def _out_folder(path: Path) -> Path:
    """A folder to write into: refused when it is a file or its parent is missing."""
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file, not a folder to write into (left untouched)")
    if not path.exists() and not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: no such folder to make {path.name} in")
    return path


def source_of(args: argparse.Namespace) -> RecordSource:
    from controller.clinic.source import open_source  # psycopg: loaded when it is used
    from controller.record import default_db_path

    return open_source(args.db if args.db is not None else default_db_path())


def _sessions(args: argparse.Namespace) -> int:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from controller.record import list_sessions

    infos = list_sessions(source_of(args), args.patient)
    if not infos:
        who = f" for patient {args.patient}" if args.patient else ""
        console().print(f"no sessions recorded{who}", highlight=False)
        return 0
    plural = "s" if len(infos) != 1 else ""
    table = Table(title=f"{len(infos)} session{plural}", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("#", "started", "patient", "protocol", "mode", "min", "status", "done",
                   "faults", "uuid"):
        table.add_column(column, justify="right" if column in ("#", "min", "faults") else "left",
                         no_wrap=column != "protocol", max_width=30 if column == "protocol"
                         else None)
    for info in infos:
        style = STATUS_STYLE.get(info.status, "")
        table.add_row(str(info.id), _local_time(info.started_at), info.patient or "—",
                      escape(info.protocol_name), info.mode, f"{info.duration_s / 60:.1f}",
                      f"[{style}]{info.status}[/]" if style else info.status, info.units_text,
                      str(info.faults), info.uuid[:8])
    console().print(table)
    return 0


def _local_time(iso_utc: str) -> str:
    return datetime.fromisoformat(iso_utc).astimezone().strftime("%Y-%m-%d %H:%M")


def _replay(args: argparse.Namespace) -> int:
    """Exit 0 when the replay decided exactly as recorded, 1 where it differs."""
    from rich.table import Table

    from controller.record import find_session, load_session
    from controller.replay import replay

    source = source_of(args)
    info = find_session(source, args.session)
    result = replay(load_session(source, info))
    counts = ", ".join(f"{n} {what}" for what, n in result.recorded_counts.items())
    if result.identical:
        console().print(f"session {info.id} replayed: identical decisions ({counts})",
                      highlight=False)
        return 0
    replayed = ", ".join(f"{n} {what}" for what, n in result.replayed_counts.items())
    console().print(f"session {info.id} replayed: decisions differ in {len(result.differences)} "
                  f"places (recorded {counts}; replay {replayed})", highlight=False)
    table = Table(show_lines=True)
    for column in ("t (s)", "what", "recorded", "replay"):
        table.add_column(column)
    for difference in result.differences[:SHOWN_DIFFERENCES]:
        table.add_row(f"{difference.t_s:.3f}", difference.what,
                      _rows(difference, difference.recorded), _rows(difference,
                                                                     difference.replayed))
    console().print(table)
    if len(result.differences) > SHOWN_DIFFERENCES:
        console().print(f"… and {len(result.differences) - SHOWN_DIFFERENCES} more",
                      highlight=False)
    return 1


def _rows(difference: Difference, rows: tuple[tuple[object, ...], ...]) -> str:
    """A decision per line, as a person reads it."""
    shown = []
    for row in rows[:6]:
        if difference.what == "event":
            t_s, detected_s, kind = row
            shown.append(f"{kind} at {t_s:.3f} s (known {detected_s:.3f} s)")
        elif difference.what == "phase":
            t_s, phase = row
            shown.append(f"{phase} at {t_s:.3f} s")
        else:
            t_s, channel, amplitude_ma = row
            shown.append(f"ch{channel} {amplitude_ma:g} mA at {t_s:.3f} s")
    if len(rows) > 6:
        shown.append(f"… {len(rows) - 6} more")
    return "\n".join(shown) or "—"


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar for long work, fed as ``progress(done, total)``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console(), transient=True) as bar:
        task = bar.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def _sync(args: argparse.Namespace) -> int:
    from controller.clinic.sync import sync_to_postgres
    from controller.record import default_db_path

    with progress_bar("pushing sessions") as progress:
        result = sync_to_postgres(args.db or default_db_path(), args.to, station=args.station,
                                  progress=progress)
    console().print(f"pushed {result.pushed} sessions; {result.already_there} already there; "
                  f"{result.skipped_running} still running (pushed once they end)",
                  highlight=False)
    return 0


def _report(args: argparse.Namespace) -> int:
    from controller.report import build_report  # matplotlib: loaded when a report is made

    out = _out_folder(args.out)
    source = source_of(args)
    with progress_bar("writing the report") as progress:
        paths = build_report(source, out, patient=args.patient, session=args.session,
                             progress=progress)
    console().print(f"report written to {args.out}: " + ", ".join(p.name for p in paths[:3])
                  + (f" and {len(paths) - 3} more" if len(paths) > 3 else ""),
                  highlight=False)
    return 0


def _export(args: argparse.Namespace) -> int:
    from controller.exchange import export_sessions  # pyarrow: loaded when exporting
    from controller.record import find_session, list_sessions

    out = _out_folder(args.out)
    source = source_of(args)
    infos = ([find_session(source, args.session)] if args.session
             else list_sessions(source, args.patient))
    if not infos:
        raise LookupError(f"no sessions recorded for patient {args.patient}" if args.patient
                          else "no sessions in this record")
    with progress_bar("exporting") as progress:
        folders = export_sessions(source, infos, out, fmt=args.format, progress=progress)
    console().print(f"{len(folders)} session{'s' if len(folders) != 1 else ''} exported to "
                  f"{args.out} ({args.format})", highlight=False)
    for folder in folders:
        console().print(f"  {folder.name}", highlight=False)
    return 0


def _import(args: argparse.Namespace) -> int:
    from controller.exchange import import_recording, recording_line, write_recording

    if not args.file.exists():
        raise LookupError(f"{args.file}: no such recording")
    if args.out is not None and args.out.exists():
        raise LookupError(f"{args.out} exists: choose another name (nothing is overwritten)")
    if args.out is not None and not args.out.parent.is_dir():
        raise LookupError(f"{args.out.parent}: no such folder to write {args.out.name} into")
    samples = import_recording(args.file, foot=args.foot)
    console().print(recording_line(args.file, samples), highlight=False)
    target = args.file
    if args.out is not None:
        write_recording(samples, args.out)
        console().print(f"written to {args.out} (one-sensor layout)", highlight=False)
        target = args.out
    console().print(f"simulate on it: fes simulate --data {target}; replay it in real time: "
                  f"fes run --imu replay://{target} …", highlight=False)
    return 0


RECORD_COMMANDS: CommandTable = {
    "sessions": ("list the recorded sessions", with_handler(_add_sessions, _sessions)),
    "replay": (("re-run a recorded session through the current controller and show where its "
               "decisions differ"), with_handler(_add_replay, _replay)),
    "sync": ("push this station's finished sessions to the clinic database",
             with_handler(_add_sync, _sync)),
    "report": (("plots (PNG), a printable HTML summary and a PDF of sessions and of progress "
               "across them"), with_handler(_add_report, _report)),
    "export": ("sessions to CSV or Parquet, a folder per session",
               with_handler(_add_export, _export)),
    "import": (("check a recording of IMU samples (CSV, the documented layout) and optionally "
               "convert it to the one-sensor layout"), with_handler(_add_import, _import)),
}
