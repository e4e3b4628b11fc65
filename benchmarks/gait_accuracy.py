"""Gait-event accuracy on recorded walks with reference events, and what the patient gets.

    python benchmarks/gait_accuracy.py [--data DIR] [--rate HZ] [--tolerance-ms MS]
                                       [--long-s S] [--json FILE]

Runs the online gyroscope detector and the tilt trigger over every ``*_foot_imu.csv``
that has a ``*_reference_events.csv`` beside it (each foot the file holds), and gaitmap's
offline pipeline when it is installed (the optional ``benchmark`` extra), and prints per
event type, per recording and overall: reference events, detected, missed, false,
sensitivity, precision, timing error and the causal delay.

Then it runs ``fes simulate``'s own session (the bundled gait protocol, each foot of each
recording, and each recording repeated end to end for at least ``--long-s`` seconds) and
scores the session record's commands against every swing of the walk
(:mod:`controller.scoring.delivery`): swing time covered by stimulation, swings not
stimulated, burst onset against toe-off, bursts starting in the first half of a stance, and
the supervisor's duty-cycle notices. ``--json FILE`` writes those figures and the event
figures as JSON.

Scoring rules are in :mod:`controller.scoring.gait` (annotated windows, turns scored
apart, one-to-one matching within the tolerance, the marker-derived heel-off reference,
which is itself uncertain by about ±20 ms: the output prints how far it moves with a 3
or 10 mm heel rise). Errors are detected minus reference time: positive means late. The
delay is the detector's ``detected_at_s - t_s``, the time the stimulation logic has to
wait for an event.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.assembly.simulated import build_simulated_session
from controller.cli import default_protocol
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
from controller.record import read_rows
from controller.scoring.delivery import (
    Delivery,
    Swing,
    bursts_from_commands,
    reference_swings,
    score_delivery,
)
from controller.scoring.gait import (
    SCORED,
    TOLERANCE_S,
    Result,
    Score,
    evaluate,
    heel_off_spread,
    run_online,
    tilt_as_toe_off,
    with_heel_off_reference,
)
from controller.types import GaitEvent, GaitEventKind, Sample
from protocols import load_protocol

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gait"
TILT_HEEL_OFF_DEG = 10.0
TILT_HEEL_STRIKE_DEG = 5.0
LABELS = {GaitEventKind.HEEL_STRIKE: "IC", GaitEventKind.HEEL_OFF: "HO", GaitEventKind.TOE_OFF: "FC"}


def run_gaitmap(recording: Recording) -> list[GaitEvent] | str:
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
    return events


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
    ]


HEADER = [
    "recording / foot", "event", "ref", "det", "miss", "false", "sens %", "prec %",
    "err med", "|err| med", "|err| p95", "|err| mean", "delay med", "delay p95", "delay max",
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
    return row[:-3] + ["offline"] * 3 if offline else row


def repeated(samples: list[Sample], swings: list[Swing], times: int) -> tuple[
        list[Sample], list[Swing]]:
    """The walk played ``times`` times end to end (a long walk), its swings shifted too."""
    period_s = samples[1].t_s - samples[0].t_s
    span_s = samples[-1].t_s - samples[0].t_s + period_s
    long_samples = [Sample(s.t_s + k * span_s, s.acc_mps2, s.gyro_dps)
                    for k in range(times) for s in samples]
    long_swings = [Swing(w.toe_off_s + k * span_s, w.heel_strike_s + k * span_s,
                         w.from_reference) for k in range(times) for w in swings]
    return long_samples, long_swings


def delivered(samples: list[Sample], swings: list[Swing], foot: str, name: str,
              db_path: Path) -> tuple[Delivery, dict[str, int], str]:
    """Run the simulated session on ``samples`` and score its record against ``swings``."""
    protocol = load_protocol(default_protocol()).model_copy(update={"leg": foot})
    rig = build_simulated_session(protocol, samples, db_path, source=f"sim://{name}#{foot}")
    summary = rig.runner().run()
    session_id = summary.session_id
    channel = protocol.channels[0].channel
    commands = read_rows(db_path, "SELECT t_s, amplitude_ma FROM commands WHERE session_id=? "
                         "AND channel=? ORDER BY rowid", (session_id, channel))
    notices = read_rows(db_path, "SELECT kind, COUNT(*) FROM notices WHERE session_id=? "
                        "GROUP BY kind", (session_id,))
    bursts = bursts_from_commands([(float(t), float(a)) for t, a in commands],
                                  samples[-1].t_s)
    return score_delivery(swings, bursts), {str(k): int(n) for k, n in notices}, summary.status


def report_delivery(rows: list[tuple[str, Delivery, dict[str, int], str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="what the patient gets: fes simulate's session record against every "
                  "swing (first steps, turns and last steps included)", title_justify="left")
    for name in ["walk / foot", "s", "swings", "swing covered %", "not stimulated",
                 "onset-TO med ms", "onset-TO p95 ms", "bursts", "early-stance bursts",
                 "duty notices", "status"]:
        table.add_column(name, justify="left" if name == "walk / foot" else "right")
    for label, d, notices, status in rows:
        f = d.as_dict()
        duty = ", ".join(f"{k} {n}" for k, n in notices.items() if k.startswith("duty"))
        table.add_row(label, f"{d.seconds:.0f}", str(d.swings),
                      f"{f['swing_covered_pct']:.1f}", str(d.not_stimulated),
                      str(f["onset_vs_toe_off_median_ms"]), str(f["onset_vs_toe_off_p95_ms"]),
                      str(d.bursts), str(d.early_stance_bursts), duty or "none", status)
    Console(width=200).print(table)


def delivery_figures(paths: list[Path], long_s: float) -> list[
        tuple[str, Delivery, dict[str, int], str]]:
    rows = []
    total, total_long = Delivery(), Delivery()
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "delivery.sqlite"
        for path in paths:
            for foot in feet_in(path):
                recording = load_recording(path, foot)
                samples, swings = recording.samples(), reference_swings(recording)
                name = recording.name
                d, notices, status = delivered(samples, swings, foot, name, db_path)
                d.seconds = recording.duration_s
                rows.append((f"{name} {foot}", d, notices, status))
                total += d
                times = max(2, math.ceil(long_s / recording.duration_s))
                long_samples, long_swings = repeated(samples, swings, times)
                d, notices, status = delivered(long_samples, long_swings, foot, name, db_path)
                d.seconds = long_samples[-1].t_s - long_samples[0].t_s
                rows.append((f"{name} {foot} x{times}", d, notices, status))
                total_long += d
    total.seconds = sum(d.seconds for label, d, _, _ in rows if " x" not in label)
    total_long.seconds = sum(d.seconds for label, d, _, _ in rows if " x" in label)
    rows.append(("all walks", total, {}, ""))
    rows.append(("all long walks", total_long, {}, ""))
    return rows


def _score_dict(s: Score) -> dict[str, object]:
    abs_ms = [1000 * abs(e) for e in s.errors_s]
    return {"reference": s.reference, "detected": s.detected, "missed": s.missed,
            "false": s.false, "sensitivity_pct": round(100 * s.sensitivity, 2)
            if s.reference else None,
            "abs_error_median_ms": round(float(np.median(abs_ms)), 1) if abs_ms else None,
            "abs_error_p95_ms": round(float(np.percentile(abs_ms, 95)), 1) if abs_ms else None}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rate", type=float, default=None, help="resample to this rate (Hz)")
    parser.add_argument("--tolerance-ms", type=float, default=1000 * TOLERANCE_S)
    parser.add_argument("--no-gaitmap", action="store_true")
    parser.add_argument("--long-s", type=float, default=120.0,
                        help="length of the long walks (recordings repeated end to end)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
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
        f"match tolerance ±{args.tolerance_ms:.0f} ms; turns (found in the data) scored apart; "
        f"rate {'as recorded' if not args.rate else f'{args.rate:g} Hz (resampled)'}"
    )
    tilt_title = (
        f"tilt trigger (causal; heel-off at -{TILT_HEEL_OFF_DEG:g}° scored as HO and as FC, "
        f"heel strike at +{TILT_HEEL_STRIKE_DEG:g}°)"
    )
    detectors: list[tuple[str, Callable[[Recording], list[GaitEvent]]]] = [
        ("online gyro detector (causal, self-calibrating)",
         lambda r: run_online(GyroGaitDetector(), r)),
        (tilt_title,
         lambda r: tilt_as_toe_off(
             run_online(TiltTrigger(TILT_HEEL_OFF_DEG, TILT_HEEL_STRIKE_DEG), r))),
    ]  # fmt: skip
    figures: dict[str, dict[str, object]] = {}
    for title, run in detectors:
        results = [evaluate(run(r), r, tolerance_s) for r in recordings]
        report(title, results)
        events_figures = figures.setdefault(title.split(" (")[0], {})
        for kind in SCORED:
            total = Score()
            for result in results:
                total += result.main[kind]
            events_figures[LABELS[kind]] = _score_dict(total)
    rows = delivery_figures(paths, args.long_s)
    report_delivery(rows)
    figures["delivery"] = {label: {"seconds": round(d.seconds, 1), **d.as_dict(),
                                   "notices": notices, "status": status}
                           for label, d, notices, status in rows}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
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
