"""Gait events scored against reference events (``*_reference_events.csv``).

Scoring rules (from the shared gait data's README):

* Only events inside each foot's annotated window, [first reference IC, last reference
  IC] widened by the match tolerance, are scored; outside it nothing is labelled.
* A recording whose reference holds heel strikes only (no toe-offs) is labelled in
  clusters: its heel strikes are matched but false events are not counted.
* Turns, found from the data (:mod:`controller.scoring.turns`), are taken out of the
  main figures and scored on their own, because the reference may lack a turning step.
* Matching is one-to-one, nearest first, within the tolerance (default 150 ms).
* Heel-off has no labelled reference; where a recording has foot-marker trajectories a
  reference is derived from the heel marker (:mod:`controller.scoring.heel_off`).

Errors are detected minus reference time: positive means late. The delay is the
detector's ``detected_at_s - t_s``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, Self

import numpy as np

from controller.devices.recording import IMU_SUFFIX, Recording, ReferenceEvent
from controller.scoring.heel_off import (
    RISE_MM,
    RISE_SPREAD_MM,
    heel_height_mm,
    heel_offs,
    markers_path,
)
from controller.scoring.turns import turn_windows
from controller.types import GaitEvent, GaitEventKind, Sample

TOLERANCE_S = 0.150
SCORED = (GaitEventKind.HEEL_STRIKE, GaitEventKind.HEEL_OFF, GaitEventKind.TOE_OFF)


@dataclass
class Score:
    """Matching figures for one event type; adds up across recordings.

    ``false`` is None where the reference is too sparse to call anything false;
    ``judged`` counts the matches made where it is not, so precision stays honest.
    """

    reference: int = 0
    detected: int = 0
    matched: int = 0
    false: int | None = None
    judged: int = 0
    errors_s: list[float] = field(default_factory=list)
    delays_s: list[float] = field(default_factory=list)

    @property
    def missed(self) -> int:
        return self.reference - self.matched

    def __iadd__(self, other: Score) -> Self:
        self.reference += other.reference
        self.detected += other.detected
        self.matched += other.matched
        if other.false is not None:
            self.false = (self.false or 0) + other.false
        self.judged += other.judged
        self.errors_s += other.errors_s
        self.delays_s += other.delays_s
        return self

    @property
    def sensitivity(self) -> float:
        return self.matched / self.reference if self.reference else math.nan

    @property
    def precision(self) -> float:
        if self.false is None or self.judged + self.false == 0:
            return math.nan
        return self.judged / (self.judged + self.false)


def match(reference_s: Sequence[float], detected_s: Sequence[float], tolerance_s: float) -> list[
    tuple[int, int]
]:
    """One-to-one pairs (reference index, detected index), nearest pairs first."""
    pairs = sorted(
        (abs(d - r), i, j)
        for i, r in enumerate(reference_s)
        for j, d in enumerate(detected_s)
        if abs(d - r) <= tolerance_s
    )
    used_ref: set[int] = set()
    used_det: set[int] = set()
    result: list[tuple[int, int]] = []
    for _, i, j in pairs:
        if i not in used_ref and j not in used_det:
            used_ref.add(i)
            used_det.add(j)
            result.append((i, j))
    return result


def score(
    detected: Iterable[GaitEvent],
    reference: Sequence[ReferenceEvent],
    kind: GaitEventKind,
    *,
    window_s: tuple[float, float],
    exclude_s: Sequence[tuple[float, float]] = (),
    count_false: bool = True,
    tolerance_s: float = TOLERANCE_S,
) -> Score:
    """Score one event type of one foot inside ``window_s`` minus ``exclude_s``."""

    def inside(t: float) -> bool:
        return window_s[0] <= t <= window_s[1] and not any(a <= t <= b for a, b in exclude_s)

    refs = [r.t_s for r in reference if r.kind is kind and inside(r.t_s)]
    dets = [e for e in detected if e.kind is kind and inside(e.t_s)]
    pairs = match(refs, [e.t_s for e in dets], tolerance_s)
    return Score(
        reference=len(refs),
        detected=len(dets),
        matched=len(pairs),
        false=len(dets) - len(pairs) if count_false else None,
        judged=len(pairs) if count_false else 0,
        errors_s=[dets[j].t_s - refs[i] for i, j in pairs],
        delays_s=[dets[j].detected_at_s - dets[j].t_s for _, j in pairs],
    )


def scoring_windows(
    recording: Recording, tolerance_s: float = TOLERANCE_S
) -> tuple[tuple[float, float], bool]:
    """The annotated window of one foot, and whether false events can be counted there."""
    strikes = [r.t_s for r in recording.reference if r.kind is GaitEventKind.HEEL_STRIKE]
    window = (min(strikes) - tolerance_s, max(strikes) + tolerance_s)
    fully_labelled = any(r.kind is GaitEventKind.TOE_OFF for r in recording.reference)
    return window, fully_labelled


def with_heel_off_reference(recording: Recording, imu_path: Path) -> Recording:
    """The recording with heel-off reference events from its marker file, if it has one."""
    markers = markers_path(imu_path, IMU_SUFFIX)
    if not markers.exists():
        return recording
    t_s, heel_mm = heel_height_mm(markers, recording.foot)
    events = heel_offs(t_s, heel_mm, recording.reference)
    return replace(recording, reference=sorted([*recording.reference, *events], key=_time))


def heel_off_spread(recording: Recording, imu_path: Path) -> str | None:
    """How far the heel-off reference moves under other rise thresholds (its own
    uncertainty, to read the heel-off figures against); None without a marker file."""
    markers = markers_path(imu_path, IMU_SUFFIX)
    if not markers.exists():
        return None
    t_s, heel_mm = heel_height_mm(markers, recording.foot)
    events = heel_offs(t_s, heel_mm, recording.reference)
    shifts = []
    for rise_mm in RISE_SPREAD_MM:
        other = heel_offs(t_s, heel_mm, recording.reference, rise_mm)
        pairs = match([e.t_s for e in events], [e.t_s for e in other], TOLERANCE_S)
        moved_ms = np.median([1000 * (other[j].t_s - events[i].t_s) for i, j in pairs])
        shifts.append(f"{rise_mm:g} mm {moved_ms:+.0f} ms")
    return (f"{recording.name} {recording.foot}: {len(events)} heel-off references from "
            f"{markers.name} (heel {RISE_MM:g} mm above its foot-flat level; median shift "
            f"with a rise of {', '.join(shifts)})")


def _time(event: ReferenceEvent) -> float:
    return event.t_s


class OnlineDetector(Protocol):
    def update(self, sample: Sample) -> list[GaitEvent]: ...


def run_online(detector: OnlineDetector, recording: Recording) -> list[GaitEvent]:
    """Feed one foot's samples one at a time, as the control loop does."""
    return [event for sample in recording.samples() for event in detector.update(sample)]


def tilt_as_toe_off(events: list[GaitEvent]) -> list[GaitEvent]:
    """The tilt trigger's stimulation-start event is heel-off; score it as heel-off and,
    since it is the only start-of-step event it has, against toe-off as well."""
    as_toe_off = [
        GaitEvent(GaitEventKind.TOE_OFF, e.t_s, e.detected_at_s)
        for e in events
        if e.kind is GaitEventKind.HEEL_OFF
    ]
    return events + as_toe_off


@dataclass
class Result:
    """Scores of one detector on one foot of one recording."""

    recording: str
    main: dict[GaitEventKind, Score]
    turn: dict[GaitEventKind, Score]


def scored_kinds(recording: Recording) -> list[GaitEventKind]:
    """Heel strikes and toe-offs always; heel-off only where a reference for it exists."""
    return [
        kind
        for kind in SCORED
        if kind is not GaitEventKind.HEEL_OFF or any(r.kind is kind for r in recording.reference)
    ]


def evaluate(
    events: list[GaitEvent],
    recording: Recording,
    tolerance_s: float = TOLERANCE_S,
) -> Result:
    window, count_false = scoring_windows(recording, tolerance_s)
    turns = turn_windows(recording)
    kinds = scored_kinds(recording)
    main = {kind: Score() for kind in SCORED}
    turn = {kind: Score() for kind in SCORED}
    for kind in kinds:
        main[kind] = score(
            events,
            recording.reference,
            kind,
            window_s=window,
            exclude_s=turns,
            count_false=count_false,
            tolerance_s=tolerance_s,
        )
        for start, end in turns:
            turn[kind] += score(
                events,
                recording.reference,
                kind,
                window_s=(max(start, window[0]), min(end, window[1])),
                count_false=count_false,
                tolerance_s=tolerance_s,
            )
    return Result(f"{recording.name} {recording.foot}", main, turn)


