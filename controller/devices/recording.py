"""Recorded IMU streams on disk, in two CSV layouts, and the reference events of a walk.

* Two feet (``shared/data/gait`` and ``shared/data/exercise``): ``time_s``, then
  ``left_acc_x`` ... ``right_gyr_z``; a session uses one foot, the stimulated leg.
  Reference events (``*_reference_events.csv``) sit beside the IMU file.
* One sensor (what ``fes export`` writes as ``samples.csv``, and what other tools can
  write): ``time_s, acc_x, acc_y, acc_z, gyro_x, gyro_y, gyro_z`` and optionally
  ``angle_x, angle_y, angle_z`` (an empty angle cell: the sensor gave none).

Acceleration in m/s² (gravity included), angular rate in °/s, angles in °, time in s.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from controller.types import GaitEventKind, Sample

_EVENT_KINDS = {"IC": GaitEventKind.HEEL_STRIKE, "FC": GaitEventKind.TOE_OFF}
IMU_SUFFIX = "_foot_imu.csv"
EVENTS_SUFFIX = "_reference_events.csv"
SENSOR_COLUMNS = ("time_s", "acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
"""The one-sensor layout's required columns, in order."""
ANGLE_COLUMNS = ("angle_x", "angle_y", "angle_z")
"""Its optional columns: the sensor's own orientation estimate."""


class RecordingFormatError(ValueError):
    """The file is not a recording in the expected layout."""


@dataclass(frozen=True, slots=True)
class ReferenceEvent:
    kind: GaitEventKind
    t_s: float


@dataclass(frozen=True)
class Recording:
    """One sensor of a recording, as arrays (rows are samples)."""

    name: str
    foot: str
    t_s: np.ndarray
    acc_mps2: np.ndarray
    gyro_dps: np.ndarray
    reference: list[ReferenceEvent] = field(default_factory=list)
    angle_deg: np.ndarray | None = None
    """The sensor's angles where the layout has them (NaN rows: none given)."""

    @property
    def rate_hz(self) -> float:
        return float((len(self.t_s) - 1) / (self.t_s[-1] - self.t_s[0]))

    @property
    def duration_s(self) -> float:
        return float(self.t_s[-1] - self.t_s[0])

    def resampled(self, rate_hz: float) -> Recording:
        """The same recording at another sample rate (linear interpolation; reference kept)."""
        t_s = np.arange(self.t_s[0], self.t_s[-1], 1.0 / rate_hz)

        def at(columns: np.ndarray) -> np.ndarray:
            return np.column_stack([np.interp(t_s, self.t_s, c) for c in columns.T])

        return Recording(self.name, self.foot, t_s, at(self.acc_mps2), at(self.gyro_dps),
                         list(self.reference),
                         None if self.angle_deg is None else at(self.angle_deg))

    def samples(self) -> list[Sample]:
        acc = self.acc_mps2.tolist()
        gyro = self.gyro_dps.tolist()
        angles = ([None] * len(acc) if self.angle_deg is None else
                  [None if any(map(math.isnan, row)) else (row[0], row[1], row[2])
                   for row in self.angle_deg.tolist()])
        return [
            Sample(t, (a[0], a[1], a[2]), (g[0], g[1], g[2]), angle)
            for t, a, g, angle in zip(self.t_s.tolist(), acc, gyro, angles, strict=True)
        ]


def feet_in(path: Path) -> list[str]:
    """The feet (``left``/``right``) that an IMU file has columns for."""
    with path.open(newline="") as handle:
        header = next(csv.reader(handle), [])
    return [foot for foot in ("left", "right") if f"{foot}_gyr_y" in header]


def load_recording(path: Path, foot: str = "left") -> Recording:
    """Load a recording in either layout: from a two-feet file, ``foot`` and its reference
    events if that file exists; a one-sensor file's sensor is taken as on ``foot``."""
    path = Path(path)
    try:
        with path.open(newline="") as handle:
            header = [name.strip() for name in next(csv.reader(handle), [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RecordingFormatError(f"{path}: cannot read recording ({exc})") from exc
    if "acc_x" in header:
        data = _numeric(path, header, SENSOR_COLUMNS, ANGLE_COLUMNS)
        angles = data[:, 7:10] if data.shape[1] == 10 else None
        return Recording(path.stem, foot, data[:, 0], data[:, 1:4], data[:, 4:7],
                         angle_deg=None if angles is None or np.isnan(angles).all() else angles)
    wanted = ["time_s", *(f"{foot}_acc_{a}" for a in "xyz"), *(f"{foot}_gyr_{a}" for a in "xyz")]
    if any(name not in header for name in wanted):
        present = feet_in(path)
        hint = f"; it holds the {' and '.join(present)} foot (choose with --foot)" \
            if present else f"; a one-sensor recording has the columns {', '.join(SENSOR_COLUMNS)}"
        missing = [name for name in wanted if name not in header]
        raise RecordingFormatError(f"{path}: no {foot}-foot IMU data (missing "
                                   f"{', '.join(missing)}){hint}")
    data = _numeric(path, header, wanted, ())
    name = path.name.removesuffix(IMU_SUFFIX)
    events_path = path.with_name(name + EVENTS_SUFFIX)
    reference = load_reference_events(events_path, foot) if events_path.exists() else []
    return Recording(name, foot, data[:, 0], data[:, 1:4], data[:, 4:7], reference)


def _numeric(path: Path, header: list[str], required: Sequence[str],
             optional: Sequence[str]) -> np.ndarray:
    """The named columns as floats (an empty optional cell is NaN), checked: every required
    cell a finite number, at least two rows, time increasing. Errors name the line."""
    missing = [name for name in required if name not in header]
    if missing:
        raise RecordingFormatError(f"{path}: missing column(s) {', '.join(missing)}; the "
                                   f"header is {','.join(header)}")
    names = [*required, *(name for name in optional if name in header)]
    columns = [header.index(name) for name in names]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "no data": refused below, in words
            data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, usecols=columns,
                              comments=None, encoding="utf-8",
                              converters={header.index(name): _number_or_nan
                                          for name in names[len(required):]})
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingFormatError(f"{path}: cannot read recording ({exc})") from exc
    except ValueError:
        raise RecordingFormatError(_first_bad_cell(path, header, required, optional)) from None
    bad_rows = np.flatnonzero(~np.isfinite(data[:, :len(required)]).all(axis=1))
    if len(bad_rows):
        raise RecordingFormatError(f"{path}, line {_line_of(path, int(bad_rows[0]))}: a value "
                                   "is not finite (nan or inf)")
    if len(data) < 2:
        raise RecordingFormatError(f"{path}: fewer than two samples")
    with np.errstate(over="ignore"):
        steps_s = np.diff(data[:, 0])
    leaps = np.flatnonzero(~np.isfinite(steps_s))
    if len(leaps):
        row = int(leaps[0]) + 1
        raise RecordingFormatError(
            f"{path}, line {_line_of(path, row)}: the time leaps beyond any number "
            f"({data[row, 0]:g} s after {data[row - 1, 0]:g} s)")
    backwards = np.flatnonzero(steps_s <= 0)
    if len(backwards):
        row = int(backwards[0]) + 1
        raise RecordingFormatError(
            f"{path}, line {_line_of(path, row)}: timestamps do not increase "
            f"({data[row, 0]:g} s after {data[row - 1, 0]:g} s)")
    return data


def _number_or_nan(text: str) -> float:
    return float(text) if text.strip() else math.nan


def _first_bad_cell(path: Path, header: list[str], required: Sequence[str],
                    optional: Sequence[str]) -> str:
    """Why numpy refused the file, found again row by row (only on the error path)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        try:
            next(reader, None)
            for row in reader:
                if problem := _row_problem(row, header, required, optional):
                    return f"{path}, line {reader.line_num}: {problem}"
        except (csv.Error, UnicodeDecodeError) as exc:
            return f"{path}, line {reader.line_num + 1}: not readable as CSV ({exc})"
    return f"{path}: not a CSV of numbers under the header"


def _row_problem(row: list[str], header: list[str], required: Sequence[str],
                 optional: Sequence[str]) -> str:
    if not row:
        return ""
    if len(row) != len(header):
        return f"{len(row)} cells where the header has {len(header)}"
    for name in [*required, *(name for name in optional if name in header)]:
        cell = row[header.index(name)].strip()
        if cell or name in required:
            try:
                float(cell)
            except ValueError:
                return f"a value is not a number ({name} is {cell!r})"
    return ""


def _line_of(path: Path, row: int) -> int:
    """The file line of data row ``row`` (numpy skips blank lines; the header is line 1)."""
    with path.open(encoding="utf-8") as handle:
        next(handle, None)
        seen = -1
        for line, text in enumerate(handle, start=2):
            seen += bool(text.strip())
            if seen == row:
                return line
    return row + 2


def load_reference_events(path: Path, foot: str) -> list[ReferenceEvent]:
    """Reference events of one foot, sorted by time; unknown event labels are skipped.
    A file that cannot be read as events is a :class:`RecordingFormatError`, naming the line."""
    events: list[ReferenceEvent] = []
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"foot", "event", "time_s"} - set(reader.fieldnames or ())
            if missing:
                raise RecordingFormatError(f"{path}: reference events need the column(s) "
                                           f"{', '.join(sorted(missing))}")
            for row in reader:
                if row["foot"] != foot or row["event"] not in _EVENT_KINDS:
                    continue
                t_s = _finite_or_none(row["time_s"])
                if t_s is None:
                    raise RecordingFormatError(
                        f"{path}, line {reader.line_num}: time_s is not a number "
                        f"({row['time_s']!r})")
                events.append(ReferenceEvent(_EVENT_KINDS[row["event"]], t_s))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RecordingFormatError(f"{path}: cannot read reference events ({exc})") from exc
    return sorted(events, key=lambda event: event.t_s)


def _finite_or_none(text: str | None) -> float | None:
    """A short row leaves a cell None; a cell may be any text."""
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def find_recordings(folder: Path) -> list[Path]:
    """Every IMU recording in a folder laid out like ``shared/data/gait``."""
    return sorted(Path(folder).glob("*" + IMU_SUFFIX))
