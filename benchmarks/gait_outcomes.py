"""Per-stride gait outcome measures from the foot IMU against motion capture.

    python benchmarks/gait_outcomes.py [--data DIR] [--json FILE]

For every recording with a ``*_mocap_markers.csv`` (walk 1), each foot: the measures of
:mod:`controller.outcomes.gait` from the IMU, with (a) the reference events and (b) the
events of the online gyro detector, against the marker-derived references of
:mod:`controller.scoring.foot_markers` (turn strides, found from the data, left out).
IMU strides are matched to reference strides by their starting heel strike (±150 ms).
Printed per foot and event source: strides matched, then per measure the median error
(bias, IMU minus markers), median |error| and 95th percentile of |error|.

Recordings without markers (walk 2) are measured with the detector's events and their
median and interquartile range printed, to see that they run and look plausible.
``--json FILE`` writes every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.detect.gait import GyroGaitDetector
from controller.devices.recording import (
    IMU_SUFFIX,
    feet_in,
    find_recordings,
    load_recording,
)
from controller.outcomes.gait import MEASURES, BoutSummary
from controller.scoring.foot_markers import (
    COMPARED,
    marker_strides,
    recording_measures,
    stride_errors,
)
from controller.scoring.gait import run_online
from controller.scoring.heel_off import markers_path
from controller.scoring.turns import turn_windows

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gait"
SHOWN = {"peak_dorsiflexion_deg": ("peak DF", "°", 1.0),
         "heel_strike_angle_deg": ("HS angle", "°", 1.0),
         "min_toe_clearance_m": ("MTC", "mm", 1000.0),
         "stride_time_s": ("stride", "ms", 1000.0),
         "cadence_spm": ("cadence", "/min", 1.0),
         "swing_fraction": ("swing", "%", 100.0)}
"""Column label, unit and scale from the measure's own unit."""


def error_figures(name: str, values: list[float]) -> dict[str, float | int | None]:
    """Bias (median error), median and 95th percentile of |error|, in the shown unit."""
    if not values:
        return {"n": 0, "bias": None, "median_abs": None, "p95_abs": None}
    data = SHOWN[name][2] * np.asarray(values)
    return {"n": len(values), "bias": round(float(np.median(data)), 2),
            "median_abs": round(float(np.median(np.abs(data))), 2),
            "p95_abs": round(float(np.percentile(np.abs(data), 95)), 2)}


def marker_table(paths: list[Path]) -> dict[str, object]:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="IMU outcome measures against motion capture (turn excluded); "
                  "error = IMU - markers: bias / median |err| / p95 |err|",
                  title_justify="left")
    for name in ["walk / foot", "events", "strides", *(
            f"{SHOWN[m][0]} {SHOWN[m][1]}" for m in COMPARED)]:
        table.add_column(name, justify="left" if name in ("walk / foot", "events") else "right")
    figures: dict[str, object] = {}
    for path in paths:
        for foot in feet_in(path):
            recording = load_recording(path, foot)
            truth = marker_strides(markers_path(path, IMU_SUFFIX), foot, recording.reference)
            turns = turn_windows(recording)
            for source in ("reference", "detected"):
                events = (recording.reference if source == "reference"
                          else run_online(GyroGaitDetector(), recording))
                matched, total, found = stride_errors(
                    recording_measures(recording, events), truth, turns)
                per = {name: error_figures(name, found[name]) for name in COMPARED}
                figures[f"{recording.name} {foot} {source}"] = {
                    "strides_matched": matched, "strides_reference": total, **per}
                table.add_row(f"{recording.name} {foot}", source, f"{matched}/{total}", *(
                    "-" if per[m]["n"] == 0 else
                    f"{per[m]['bias']:+.1f} / {per[m]['median_abs']:.1f} / "
                    f"{per[m]['p95_abs']:.1f} (n={per[m]['n']})" for m in COMPARED))
    Console(width=200).print(table)
    return figures


def plausibility_table(paths: list[Path]) -> dict[str, object]:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="recordings without markers, detector's events: median (IQR)",
                  title_justify="left")
    for name in ["walk / foot", "strides", *(f"{SHOWN[m][0]} {SHOWN[m][1]}" for m in MEASURES)]:
        table.add_column(name, justify="left" if name == "walk / foot" else "right")
    figures: dict[str, object] = {}
    for path in paths:
        for foot in feet_in(path):
            recording = load_recording(path, foot)
            steps = recording_measures(recording, run_online(GyroGaitDetector(), recording))
            summaries = {}
            for name in MEASURES:
                scale = SHOWN[name][2]
                values = [scale * v for s in steps if (v := getattr(s, name)) is not None]
                summaries[name] = BoutSummary.of(values)
            figures[f"{recording.name} {foot}"] = {
                "strides": len(steps),
                **{name: {"count": s.count, "median": round(s.median, 2),
                          "q25": round(s.q25, 2), "q75": round(s.q75, 2)}
                   for name, s in summaries.items()}}
            table.add_row(f"{recording.name} {foot}", str(len(steps)), *(
                f"{s.median:.1f} ({s.q25:.1f}-{s.q75:.1f})" for s in summaries.values()))
    Console(width=200).print(table)
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    paths = find_recordings(args.data)
    with_markers = [p for p in paths if markers_path(p, IMU_SUFFIX).exists()]
    if not with_markers:
        print(f"no *{IMU_SUFFIX} with marker trajectories in {args.data}", file=sys.stderr)
        return 1
    figures = {"against_markers": marker_table(with_markers),
               "without_markers": plausibility_table(
                   [p for p in paths if p not in with_markers])}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
