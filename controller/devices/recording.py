"""Recorded IMU walks on disk: the CSV layout of ``shared/data/gait`` and its reference events.

One file holds both feet (``left_acc_x`` ... ``right_gyr_z``); a session uses one foot, the
stimulated leg. Reference events (``*_reference_events.csv``) sit beside the IMU file.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from controller.types import GaitEventKind, Sample

_EVENT_KINDS = {"IC": GaitEventKind.HEEL_STRIKE, "FC": GaitEventKind.TOE_OFF}
IMU_SUFFIX = "_foot_imu.csv"
EVENTS_SUFFIX = "_reference_events.csv"


class RecordingFormatError(ValueError):
    """The file is not a recording in the expected layout."""


@dataclass(frozen=True, slots=True)
class ReferenceEvent:
    kind: GaitEventKind
    t_s: float


@dataclass(frozen=True)
class Recording:
    """One foot of a recorded walk, as arrays (rows are samples)."""

    name: str
    foot: str
    t_s: np.ndarray
    acc_mps2: np.ndarray
    gyro_dps: np.ndarray
    reference: list[ReferenceEvent] = field(default_factory=list)

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
                         list(self.reference))

    def samples(self) -> list[Sample]:
        acc = self.acc_mps2.tolist()
        gyro = self.gyro_dps.tolist()
        return [
            Sample(t, (a[0], a[1], a[2]), (g[0], g[1], g[2]))
            for t, a, g in zip(self.t_s.tolist(), acc, gyro, strict=True)
        ]


def feet_in(path: Path) -> list[str]:
    """The feet (``left``/``right``) that an IMU file has columns for."""
    with path.open(newline="") as handle:
        header = next(csv.reader(handle), [])
    return [foot for foot in ("left", "right") if f"{foot}_gyr_y" in header]


def load_recording(path: Path, foot: str = "left") -> Recording:
    """Load one foot of ``*_foot_imu.csv`` plus its reference events, if the file exists."""
    path = Path(path)
    wanted = ["time_s", *(f"{foot}_acc_{a}" for a in "xyz"), *(f"{foot}_gyr_{a}" for a in "xyz")]
    try:
        with path.open(newline="") as handle:
            header = next(csv.reader(handle), [])
            missing = [name for name in wanted if name not in header]
            if missing:
                present = feet_in(path)
                hint = f"; it holds the {' and '.join(present)} foot (choose with --foot)" \
                    if present else ""
                raise RecordingFormatError(f"{path}: no {foot}-foot IMU data (missing "
                                           f"{', '.join(missing)}){hint}")
            data = np.loadtxt(handle, delimiter=",", ndmin=2,
                              usecols=[header.index(name) for name in wanted])
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingFormatError(f"{path}: cannot read recording ({exc})") from exc
    except ValueError as exc:
        if isinstance(exc, RecordingFormatError):
            raise
        raise RecordingFormatError(f"{path}: a value is not a number ({exc})") from exc
    if len(data) < 2:
        raise RecordingFormatError(f"{path}: fewer than two samples")
    name = path.name.removesuffix(IMU_SUFFIX)
    events_path = path.with_name(name + EVENTS_SUFFIX)
    reference = load_reference_events(events_path, foot) if events_path.exists() else []
    return Recording(name, foot, data[:, 0], data[:, 1:4], data[:, 4:7], reference)


def load_reference_events(path: Path, foot: str) -> list[ReferenceEvent]:
    """Reference events of one foot, sorted by time; unknown event labels are skipped."""
    with Path(path).open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["foot"] == foot]
    events = [
        ReferenceEvent(_EVENT_KINDS[row["event"]], float(row["time_s"]))
        for row in rows
        if row["event"] in _EVENT_KINDS
    ]
    return sorted(events, key=lambda event: event.t_s)


def find_recordings(folder: Path) -> list[Path]:
    """Every IMU recording in a folder laid out like ``shared/data/gait``."""
    return sorted(Path(folder).glob("*" + IMU_SUFFIX))
