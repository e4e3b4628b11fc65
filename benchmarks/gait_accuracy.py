"""Gait-event accuracy on recorded walks with reference events.

    python benchmarks/gait_accuracy.py [--data DIR] [--rate HZ] [--tolerance-ms MS]

Runs the online gyroscope detector and the tilt trigger over every ``*_foot_imu.csv``
that has a ``*_reference_events.csv`` beside it (each foot the file holds), and gaitmap's
offline pipeline when it is installed (the optional ``benchmark`` extra), and prints per
event type, per recording and overall: reference events, detected, missed, false,
sensitivity, precision, timing error and the causal delay.

Scoring rules are in :mod:`controller.scoring.gait` (annotated windows, turns scored
apart, one-to-one matching within the tolerance, the marker-derived heel-off reference,
which is itself uncertain by about ±20 ms: the output prints how far it moves with a 3
or 10 mm heel rise). Errors are detected minus reference time: positive means late. The
delay is the detector's ``detected_at_s - t_s``, the time the stimulation logic has to
wait for an event.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.detect.gait import GyroGaitDetector
from controller.detect.tilt import TiltTrigger
from controller.devices.recording import (
    EVENTS_SUFFIX,
    IMU_SUFFIX,
    Recording,
    feet_in,
    find_recordings,
    load_recording,
)
from controller.scoring.gait import (
    SCORED,
    TOLERANCE_S,
    TURNS_S,
    Result,
    Score,
    evaluate,
    heel_off_spread,
    run_online,
    tilt_as_toe_off,
    with_heel_off_reference,
)
from controller.types import GaitEvent, GaitEventKind

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gait"
TILT_HEEL_OFF_DEG = 10.0
TILT_HEEL_STRIKE_DEG = 5.0
LABELS = {GaitEventKind.HEEL_STRIKE: "IC", GaitEventKind.HEEL_OFF: "HO", GaitEventKind.TOE_OFF: "FC"}


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
            note = heel_off_spread(recording, path)
            if note:
                print(note)
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
