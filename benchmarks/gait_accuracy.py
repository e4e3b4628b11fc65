"""Gait-event accuracy on recorded walks with reference events.

    python benchmarks/gait_accuracy.py [--data DIR] [--rate HZ] [--tolerance-ms MS]

Runs the online gyroscope detector and the tilt trigger over every ``*_foot_imu.csv``
that has a ``*_reference_events.csv`` beside it (each foot the file holds), and gaitmap's
offline pipeline when it is installed (the optional ``benchmark`` extra), and prints per
event type, per recording and overall: reference events, detected, missed, false,
sensitivity, precision, timing error and the causal delay.

Scoring rules (from the data set's README):

* Only events inside each foot's annotated window, [first reference IC, last reference
  IC] widened by the match tolerance, are scored; outside it nothing is labelled.
* A recording whose reference holds heel strikes only (no toe-offs) is labelled in
  clusters: its heel strikes are matched but false events are not counted.
* Known turns (``TURNS_S``) are taken out of the main figures and scored on their own
  line, because the reference may lack a turning step.
* Matching is one-to-one, nearest first, within the tolerance (default 150 ms).
* Heel-off (HO) has no labelled reference. Where a recording has foot-marker trajectories
  (``*_mocap_markers.csv``, walk 1), a heel-off reference is derived from the heel marker
  by the rule in ``benchmarks/heel_off_reference.py``: the heel rises 5 mm above its
  foot-flat level. That rule is itself uncertain by about ±20 ms (the output prints how
  far it moves with a 3 or 10 mm rise), so heel-off errors are read against that.

Errors are detected minus reference time: positive means late. The delay is the detector's
``detected_at_s - t_s``, the time the stimulation logic has to wait for an event.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, Self

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.heel_off_reference import (
    RISE_MM,
    RISE_SPREAD_MM,
    heel_height_mm,
    heel_offs,
    markers_path,
)
from controller.detect.gait import GyroGaitDetector
from controller.detect.tilt import TiltTrigger
from controller.devices.recording import (
    EVENTS_SUFFIX,
    IMU_SUFFIX,
    Recording,
    ReferenceEvent,
    feet_in,
    find_recordings,
    load_recording,
)
from controller.types import GaitEvent, GaitEventKind, Sample

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gait"
TOLERANCE_S = 0.150
TURNS_S: dict[str, list[tuple[float, float]]] = {"walk1_2x20m": [(16.4, 18.7)]}
"""Turns named in the data README; scored apart, never used by the detectors."""
TILT_HEEL_OFF_DEG = 10.0
TILT_HEEL_STRIKE_DEG = 5.0
SCORED = (GaitEventKind.HEEL_STRIKE, GaitEventKind.HEEL_OFF, GaitEventKind.TOE_OFF)
LABELS = {GaitEventKind.HEEL_STRIKE: "IC", GaitEventKind.HEEL_OFF: "HO", GaitEventKind.TOE_OFF: "FC"}


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
    late_warm_up: int = 0

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
        self.late_warm_up += other.late_warm_up
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
    warm_up_until_s: float | None = None,
) -> Score:
    """Score one event type of one foot inside ``window_s`` minus ``exclude_s``.

    Delays are taken after ``warm_up_until_s`` only: events of the first steps, replayed
    once self-calibration is done, are counted as found but their delay is not the
    detector's steady-state delay (``late_warm_up`` counts them).
    """

    def inside(t: float) -> bool:
        return window_s[0] <= t <= window_s[1] and not any(a <= t <= b for a, b in exclude_s)

    refs = [r.t_s for r in reference if r.kind is kind and inside(r.t_s)]
    dets = [e for e in detected if e.kind is kind and inside(e.t_s)]
    pairs = match(refs, [e.t_s for e in dets], tolerance_s)
    warm_up_s = -math.inf if warm_up_until_s is None else warm_up_until_s
    steady = [dets[j] for _, j in pairs if dets[j].detected_at_s > warm_up_s]
    return Score(
        reference=len(refs),
        detected=len(dets),
        matched=len(pairs),
        false=len(dets) - len(pairs) if count_false else None,
        judged=len(pairs) if count_false else 0,
        errors_s=[dets[j].t_s - refs[i] for i, j in pairs],
        delays_s=[e.detected_at_s - e.t_s for e in steady],
        late_warm_up=len(pairs) - len(steady),
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
    """The recording with heel-off reference events from its marker file, if it has one.

    Prints the rule and how far the reference moves under other rise thresholds, so the
    heel-off figures are read against the reference's own uncertainty.
    """
    markers = markers_path(imu_path, IMU_SUFFIX)
    if not markers.exists():
        return recording
    t_s, heel_mm = heel_height_mm(markers, recording.foot)
    events = heel_offs(t_s, heel_mm, recording.reference)
    shifts = []
    for rise_mm in RISE_SPREAD_MM:
        other = heel_offs(t_s, heel_mm, recording.reference, rise_mm)
        pairs = match([e.t_s for e in events], [e.t_s for e in other], TOLERANCE_S)
        moved_ms = np.median([1000 * (other[j].t_s - events[i].t_s) for i, j in pairs])
        shifts.append(f"{rise_mm:g} mm {moved_ms:+.0f} ms")
    print(
        f"{recording.name} {recording.foot}: {len(events)} heel-off references from "
        f"{markers.name} (heel {RISE_MM:g} mm above its foot-flat level; median shift "
        f"with a rise of {', '.join(shifts)})"
    )
    return replace(recording, reference=sorted([*recording.reference, *events], key=_time))


def _time(event: ReferenceEvent) -> float:
    return event.t_s


class OnlineDetector(Protocol):
    def update(self, sample: Sample) -> list[GaitEvent]: ...

    @property
    def calibrated_at_s(self) -> float | None: ...


def run_online(
    detector: OnlineDetector, recording: Recording
) -> tuple[list[GaitEvent], float | None]:
    """Feed one foot's samples one at a time, as the control loop does."""
    events = [event for sample in recording.samples() for event in detector.update(sample)]
    return events, detector.calibrated_at_s


def tilt_as_toe_off(
    result: tuple[list[GaitEvent], float | None],
) -> tuple[list[GaitEvent], float | None]:
    """The tilt trigger's stimulation-start event is heel-off; score it as heel-off and,
    since it is the only start-of-step event it has, against toe-off as well."""
    events, calibrated_at_s = result
    as_toe_off = [
        GaitEvent(GaitEventKind.TOE_OFF, e.t_s, e.detected_at_s)
        for e in events
        if e.kind is GaitEventKind.HEEL_OFF
    ]
    return events + as_toe_off, calibrated_at_s


def run_gaitmap(recording: Recording) -> tuple[list[GaitEvent], float | None] | str:
    """gaitmap's offline pipeline on one foot, or the reason it cannot run.

    Gravity alignment, foot body frame, BarthDtw stride segmentation, RamppEventDetection,
    default parameters. gaitmap_mad is AGPL-3.0: imported here only, never by the product.
    """
    try:
        import pandas as pd
        from gaitmap.event_detection import RamppEventDetection
        from gaitmap.preprocessing import align_dataset_to_gravity
        from gaitmap.stride_segmentation import BarthDtw
        from gaitmap.utils.coordinate_conversion import convert_to_fbf
    except ImportError as exc:
        return f"gaitmap not importable ({exc}); install the 'benchmark' extra"
    rate_hz = recording.rate_hz
    sensor = f"{recording.foot}_sensor"
    frame = pd.DataFrame(
        np.column_stack([recording.acc_mps2, recording.gyro_dps]),
        columns=pd.MultiIndex.from_product(
            [[sensor], ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]]
        ),
    )
    aligned = align_dataset_to_gravity(frame, rate_hz)
    side = "left" if recording.foot == "left" else "right"
    body = convert_to_fbf(aligned, **{side: [sensor]})
    strides = BarthDtw().segment(body, rate_hz).stride_list_
    detection = RamppEventDetection().detect(body, strides, sampling_rate_hz=rate_hz)
    table = detection.min_vel_event_list_[sensor]
    t_s = recording.t_s
    strikes = sorted(set(table["pre_ic"].astype(int)) | set(table["ic"].astype(int)))
    events = [GaitEvent(GaitEventKind.HEEL_STRIKE, float(t_s[i]), float(t_s[-1])) for i in strikes]
    events += [
        GaitEvent(GaitEventKind.TOE_OFF, float(t_s[int(i)]), float(t_s[-1])) for i in table["tc"]
    ]
    return events, None


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
    result: tuple[list[GaitEvent], float | None],
    recording: Recording,
    tolerance_s: float = TOLERANCE_S,
) -> Result:
    events, calibrated_at_s = result
    window, count_false = scoring_windows(recording, tolerance_s)
    turns = TURNS_S.get(recording.name, [])
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
            warm_up_until_s=calibrated_at_s,
        )
        for start, end in turns:
            turn[kind] += score(
                events,
                recording.reference,
                kind,
                window_s=(max(start, window[0]), min(end, window[1])),
                count_false=count_false,
                tolerance_s=tolerance_s,
                warm_up_until_s=calibrated_at_s,
            )
    return Result(f"{recording.name} {recording.foot}", main, turn)


def _ms(values: Sequence[float], how: str) -> str:
    if not values:
        return "-"
    data = np.abs(values) if how != "median" else np.asarray(values)
    figure = {
        "median": np.median(data),
        "p95": np.percentile(data, 95),
        "mean": np.mean(data),
        "max": np.max(data),
    }[how]
    return f"{1000 * figure:+.0f}" if how == "median" else f"{1000 * figure:.0f}"


def _row(label: str, kind: GaitEventKind, s: Score) -> list[str]:
    return [
        label,
        LABELS[kind],
        str(s.reference),
        str(s.detected),
        str(s.missed),
        "n/a" if s.false is None else str(s.false),
        f"{100 * s.sensitivity:.1f}" if s.reference else "-",
        f"{100 * s.precision:.1f}" if not math.isnan(s.precision) else "n/a",
        _ms(s.errors_s, "median"),
        _ms([abs(e) for e in s.errors_s], "median").lstrip("+"),
        _ms(s.errors_s, "p95"),
        _ms(s.errors_s, "mean"),
        _ms(s.delays_s, "median").lstrip("+"),
        _ms(s.delays_s, "p95"),
        _ms(s.delays_s, "max"),
        str(s.late_warm_up),
    ]


HEADER = [
    "recording / foot", "event", "ref", "det", "miss", "false", "sens %", "prec %",
    "err med", "|err| med", "|err| p95", "|err| mean", "delay med", "delay p95", "delay max", "warm-up",
]  # fmt: skip


def report(title: str, results: list[Result], offline: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name in HEADER:
        table.add_column(name, justify="left" if name == "recording / foot" else "right")
    totals = {kind: Score() for kind in SCORED}
    turns = {kind: Score() for kind in SCORED}
    for result in results:
        for kind in SCORED:
            if result.main[kind].reference:
                table.add_row(*_hide_delay(_row(result.recording, kind, result.main[kind]), offline))
            totals[kind] += result.main[kind]
            turns[kind] += result.turn[kind]
    table.add_section()
    for kind in SCORED:
        table.add_row(*_hide_delay(_row("overall (turn excluded)", kind, totals[kind]), offline))
    for kind in SCORED:
        if turns[kind].reference:
            table.add_row(*_hide_delay(_row("turn only", kind, turns[kind]), offline))
    Console(width=200).print(table)


def _hide_delay(row: list[str], offline: bool) -> list[str]:
    return row[:-4] + ["offline"] * 3 + ["-"] if offline else row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rate", type=float, default=None, help="resample to this rate (Hz)")
    parser.add_argument("--tolerance-ms", type=float, default=1000 * TOLERANCE_S)
    parser.add_argument("--no-gaitmap", action="store_true")
    args = parser.parse_args(argv)
    tolerance_s = args.tolerance_ms / 1000
    paths = [
        p for p in find_recordings(args.data)
        if p.with_name(p.name.removesuffix(IMU_SUFFIX) + EVENTS_SUFFIX).exists()
    ]  # fmt: skip
    if not paths:
        print(f"no *{IMU_SUFFIX} with *{EVENTS_SUFFIX} in {args.data}", file=sys.stderr)
        return 1
    recordings = []
    for path in paths:
        for foot in feet_in(path):
            recording = with_heel_off_reference(load_recording(path, foot), path)
            recordings.append(recording.resampled(args.rate) if args.rate else recording)
    print(
        f"{len(recordings)} feet from {len(paths)} recordings in {args.data}; "
        f"match tolerance ±{args.tolerance_ms:.0f} ms; turns {TURNS_S} scored apart; "
        f"rate {'as recorded' if not args.rate else f'{args.rate:g} Hz (resampled)'}"
    )
    tilt_title = (
        f"tilt trigger (causal; heel-off at -{TILT_HEEL_OFF_DEG:g}° scored as HO and as FC, "
        f"heel strike at +{TILT_HEEL_STRIKE_DEG:g}°)"
    )
    detectors: list[tuple[str, Callable[[Recording], tuple[list[GaitEvent], float | None]]]] = [
        ("online gyro detector (causal, self-calibrating)",
         lambda r: run_online(GyroGaitDetector(), r)),
        (tilt_title,
         lambda r: tilt_as_toe_off(
             run_online(TiltTrigger(TILT_HEEL_OFF_DEG, TILT_HEEL_STRIKE_DEG), r))),
    ]  # fmt: skip
    for title, run in detectors:
        report(title, [evaluate(run(r), r, tolerance_s) for r in recordings])
    if args.no_gaitmap:
        return 0
    gaitmap_results = []
    for recording in recordings:
        events = run_gaitmap(recording)
        if isinstance(events, str):
            print(f"gaitmap reference skipped: {events}")
            return 0
        gaitmap_results.append(evaluate(events, recording, tolerance_s))
    report("gaitmap 2.6 offline (BarthDtw + RamppEventDetection)", gaitmap_results, offline=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
