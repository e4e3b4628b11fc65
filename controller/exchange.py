"""Sessions out to CSV or Parquet for analysis elsewhere; recordings in, to simulate on.

An exported session is a folder (``<date>_<time>_<uuid prefix>``) with one file per table
of the record and a ``session.json`` (the session's info, summary, protocol TOML). Its
``samples`` file is in the one-sensor recording layout (:mod:`controller.devices.recording`),
so an exported session can be imported back and simulated on. Everything is read through
a :class:`RecordSource`, so a station's record and the clinic database export alike.

Missing values (an angle the sensor did not give, a step with no heel strike) are empty
CSV cells and Parquet nulls. CSV floats are written with ``repr``, so they read back
exactly, as Parquet's float64 columns do.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from controller.devices.recording import (
    ANGLE_COLUMNS,
    SENSOR_COLUMNS,
    RecordingFormatError,
    load_recording,
)
from controller.record.reader import (
    REPETITION_COLUMNS,
    STEP_COLUMNS,
    Note,
    RecordedCommand,
    RecordedEvent,
    RecordSource,
    SessionData,
    SessionInfo,
    load_session,
)
from controller.sensor_units import UnitsCheck
from controller.sensor_watch import MIN_RATE_HZ
from controller.types import Sample

ExportFormat = Literal["csv", "parquet"]
Progress = Callable[[int, int], None]
"""``progress(done, total)``: called with (0, total) first, then after each unit of work."""

EXPORT_VERSION = 1
"""Bumped when the layout of an exported session changes."""
TABLES = ("samples", "events", "phases", "commands", "faults", "notices", "cues", "steps",
          "repetitions")
SAMPLE_COLUMNS = (*SENSOR_COLUMNS, *ANGLE_COLUMNS)
SAMPLE_UNITS = {"time_s": "s", "acc_x..acc_z": "m/s² (gravity included)",
                "gyro_x..gyro_z": "°/s", "angle_x..angle_z": "°"}
_INTEGER_COLUMNS = frozenset({"step", "set_index", "rep_index", "channel", "stimulated",
                              "assisted"})
_TEXT_COLUMNS = frozenset({"kind", "text", "phase", "outcome"})
"""Every other column is a float64 (times, angles, charges, amplitudes)."""


@dataclass(frozen=True)
class Table:
    """Rows by column (Parquet's shape); ``None`` is a missing value."""

    columns: tuple[str, ...]
    values: tuple[list[Any], ...]

    @property
    def rows(self) -> int:
        return len(self.values[0])


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    by_column = [list(column) for column in zip(*rows, strict=True)] if rows else \
        [[] for _ in columns]
    return Table(tuple(columns), tuple(
        [None if v is None else int(v) for v in values] if name in _INTEGER_COLUMNS
        else values for name, values in zip(columns, by_column, strict=True)))


def samples_table(columns: Sequence[Sequence[float] | np.ndarray]) -> Table:
    """The one-sensor layout from its ten columns of floats (NaN: missing)."""
    return Table(SAMPLE_COLUMNS, tuple(
        [None if math.isnan(v) else v for v in np.asarray(column, dtype=float).tolist()]
        for column in columns))


def session_tables(data: SessionData) -> dict[str, Table]:
    """Every table of one session, in export order."""
    s = data.samples
    return {
        "samples": samples_table([s.t_s, *s.acc_mps2.T, *s.gyro_dps.T, *s.angle_deg.T]),
        "events": _table(RecordedEvent._fields, data.events),
        "phases": _table(("t_s", "phase"), data.phases),
        "commands": _table(RecordedCommand._fields, data.commands),
        "faults": _table(Note._fields, data.faults),
        "notices": _table(Note._fields, data.notices),
        "cues": _table(Note._fields, data.cues),
        "steps": _table(STEP_COLUMNS, [[row[c] for c in STEP_COLUMNS] for row in data.steps]),
        "repetitions": _table(REPETITION_COLUMNS, [[row[c] for c in REPETITION_COLUMNS]
                                                   for row in data.repetitions]),
    }


def write_table(table: Table, path: Path, fmt: ExportFormat) -> None:
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(table.columns)
            writer.writerows(zip(*table.values, strict=True))
        return
    pq.write_table(pa.table({name: pa.array(values, type=_arrow_type(name))
                             for name, values in zip(table.columns, table.values,
                                                     strict=True)}), path)


def _arrow_type(column: str) -> Any:
    if column in _INTEGER_COLUMNS:
        return pa.int64()
    return pa.string() if column in _TEXT_COLUMNS else pa.float64()


def session_folder_name(info: SessionInfo) -> str:
    """``2025-03-01_142233_3f2a9c1e``: sorts by start, unique by the UUID's prefix."""
    stamp = info.started_at[:19].replace("T", "_").replace(":", "")
    return f"{stamp}_{info.uuid[:8]}"


def export_session(data: SessionData, out_dir: Path, fmt: ExportFormat) -> Path:
    """One session as a folder in ``out_dir``, replacing an earlier export of it.

    Written beside it first and renamed into place, so a folder with the final name is
    always a whole export.
    """
    folder = out_dir / session_folder_name(data.info)
    partial = out_dir / f".{folder.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    rows = {}
    for name, table in session_tables(data).items():
        write_table(table, partial / f"{name}.{fmt}", fmt)
        rows[name] = table.rows
    tables = set(TABLES)
    about = {f.name: getattr(data, f.name) for f in fields(data)
             if f.name not in tables and f.name != "info"}
    (partial / "session.json").write_text(json.dumps({
        "export_version": EXPORT_VERSION, "format": fmt, "info": asdict(data.info), **about,
        "rows": rows, "sample_units": SAMPLE_UNITS}, indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def export_sessions(source: RecordSource, infos: Sequence[SessionInfo], out_dir: Path, *,
                    fmt: ExportFormat, progress: Progress | None = None) -> list[Path]:
    """Each session of ``infos`` exported to ``out_dir`` (created if need be); the folders,
    in the order given. ``progress`` counts sessions."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown export format {fmt!r}: csv or parquet")
    out_dir.mkdir(parents=True, exist_ok=True)
    folders: list[Path] = []
    for done, info in enumerate(infos):
        if progress is not None:
            progress(done, len(infos))
        folders.append(export_session(load_session(source, info), out_dir, fmt))
    if progress is not None:
        progress(len(infos), len(infos))
    return folders


def import_recording(path: Path, *, foot: str = "left") -> list[Sample]:
    """A recording's samples, in any layout :func:`load_recording` reads (an exported
    session's folder means its ``samples.csv``), refused with a one-line
    :class:`RecordingFormatError` if its units or rate look wrong: a file in g or rad/s
    would simulate a session that stimulates nothing."""
    path = Path(path)
    if path.is_dir():
        if not (path / "samples.csv").is_file():
            raise RecordingFormatError(f"{path}: no samples.csv in this folder (import reads "
                                       "CSV: export the session with the csv format)")
        path = path / "samples.csv"
    samples = load_recording(path, foot).samples()
    check = UnitsCheck(min(MIN_RATE_HZ.values()))
    for sample in samples:
        if problem := check.observe(sample.t_s, sample.acc_mps2, sample.gyro_dps):
            raise RecordingFormatError(f"{path}: {problem}")
        if check.done:
            break
    return samples


def write_recording(samples: Sequence[Sample], path: Path) -> None:
    """Samples as a one-sensor CSV recording (what ``fes import --out`` writes)."""
    nan = float("nan")
    write_table(samples_table(list(zip(*(
        (s.t_s, *s.acc_mps2, *s.gyro_dps, *(s.angle_deg or (nan, nan, nan)))
        for s in samples), strict=True))), path, "csv")


def recording_line(path: Path, samples: Sequence[Sample]) -> str:
    """What an imported recording holds, in one line."""
    span_s = samples[-1].t_s - samples[0].t_s
    angles = ", with angles" if any(s.angle_deg is not None for s in samples) else ""
    return (f"{path}: {len(samples)} samples, {span_s:.1f} s at "
            f"{(len(samples) - 1) / span_s:.1f} Hz{angles}")
