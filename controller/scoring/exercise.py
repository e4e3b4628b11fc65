"""Exercise detection scored against reference repetitions (``*_reps.csv``).

A detected repetition is a complete one: onset, top, lowering, back at rest. It matches a
reference repetition when its peak time falls inside the reference's [onset, end]; each
side is used once, in time order. Errors are detected minus reference: positive means late
(onset) or too large (range of motion).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from controller.types import ExerciseEvent, ExerciseEventKind, Sample

IMU_SUFFIX = "_imu.csv"
REPS_SUFFIX = "_reps.csv"


@dataclass(frozen=True, slots=True)
class ReferenceRep:
    onset_s: float
    peak_s: float
    end_s: float
    rom_deg: float


@dataclass(frozen=True, slots=True)
class DetectedRep:
    onset_s: float
    onset_detected_s: float
    peak_s: float
    end_s: float
    rom_deg: float


@dataclass(frozen=True)
class RepScore:
    reference: int
    found: int
    false_reps: int
    onset_errors_ms: list[float]
    rom_errors_deg: list[float]
    onset_delays_ms: list[float]

    @property
    def found_pct(self) -> float:
        return 100.0 * self.found / self.reference if self.reference else 100.0


def load_reference_reps(path: Path, side: str) -> list[ReferenceRep]:
    with Path(path).open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["side"] == side]
    return sorted((ReferenceRep(float(row["onset_s"]), float(row["peak_s"]),
                                float(row["end_s"]), float(row["rom_deg"])) for row in rows),
                  key=lambda rep: rep.onset_s)


def complete_reps(events: Iterable[ExerciseEvent]) -> list[DetectedRep]:
    """Repetitions that went from onset through a top back to rest, from a detector's events."""
    reps: list[DetectedRep] = []
    onset: ExerciseEvent | None = None
    top: ExerciseEvent | None = None
    for event in events:
        match event.kind:
            case ExerciseEventKind.ONSET:
                onset, top = event, None
            case ExerciseEventKind.REACHED:
                top = event
            case ExerciseEventKind.AT_REST if onset is not None and top is not None:
                reps.append(DetectedRep(onset.t_s, onset.detected_at_s, top.t_s, event.t_s,
                                        event.angle_deg))
                onset = top = None
            case ExerciseEventKind.ABANDONED | ExerciseEventKind.FIDGET:
                onset = top = None
    return reps


def run_detector(update: Callable[[Sample], list[ExerciseEvent]],
                 samples: Iterable[Sample]) -> list[DetectedRep]:
    """Feed ``samples`` to a detector's ``update`` and keep its complete repetitions."""
    return complete_reps(event for sample in samples for event in update(sample))


def reps_path(imu_path: Path) -> Path:
    """Where a recording's reference repetitions live (``<name>_reps.csv`` beside it)."""
    return imu_path.with_name(imu_path.name.removesuffix(IMU_SUFFIX) + REPS_SUFFIX)


def score(detected: list[DetectedRep], reference: list[ReferenceRep]) -> RepScore:
    unused = list(detected)
    onset_errors, rom_errors, delays = [], [], []
    for ref in reference:
        match = next((rep for rep in unused if ref.onset_s <= rep.peak_s <= ref.end_s), None)
        if match is None:
            continue
        unused.remove(match)
        onset_errors.append(1000.0 * (match.onset_s - ref.onset_s))
        rom_errors.append(match.rom_deg - ref.rom_deg)
        delays.append(1000.0 * (match.onset_detected_s - ref.onset_s))
    return RepScore(len(reference), len(onset_errors), len(unused), onset_errors, rom_errors,
                    delays)


def median_p95(values: list[float]) -> tuple[float, float]:
    """Median and 95th percentile of absolute values (nan when there are none)."""
    if not values:
        return float("nan"), float("nan")
    magnitudes = np.abs(values)
    return float(np.median(magnitudes)), float(np.percentile(magnitudes, 95))
