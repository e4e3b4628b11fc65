"""Exercise repetition detection on recordings with reference repetitions.

    python benchmarks/exercise_accuracy.py [--data DIR] [--rate HZ] [--json FILE]

Runs the causal exercise phase detector (default settings: 5° onset threshold, movement
axis found from the data) over every ``<name>_imu.csv`` in DIR that has a
``<name>_reps.csv`` beside it, on each side the reference labels, and prints per recording
and overall: reference repetitions, found %, false repetitions, onset error median / p95
(ms), range-of-motion error median / p95 (deg), and the detection delay (the time from the
reference onset to the sample on which the detector said "onset", which is when triggered
stimulation can start). Sides with IMU columns but no reference repetitions are scored as
"quiet": every repetition found there is false.

Scoring rules are in :mod:`controller.scoring.exercise`. The detector is given nothing
about a file but its samples.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.detect.exercise import ExercisePhaseDetector
from controller.devices.recording import RecordingFormatError, feet_in, load_recording
from controller.scoring.exercise import (
    IMU_SUFFIX,
    RepScore,
    load_reference_reps,
    median_p95,
    reps_path,
    run_detector,
    score,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "exercise"


@dataclass(frozen=True)
class Row:
    label: str
    score: RepScore

    def as_dict(self) -> dict[str, float | int | str]:
        onset = median_p95(self.score.onset_errors_ms)
        rom = median_p95(self.score.rom_errors_deg)
        delay = median_p95(self.score.onset_delays_ms)
        return {"recording": self.label, "reference": self.score.reference,
                "found_pct": round(self.score.found_pct, 1),
                "false_reps": self.score.false_reps,
                "onset_error_median_ms": round(onset[0], 1),
                "onset_error_p95_ms": round(onset[1], 1),
                "rom_error_median_deg": round(rom[0], 2), "rom_error_p95_deg": round(rom[1], 2),
                "detection_delay_median_ms": round(delay[0], 1)}


def evaluate(imu_path: Path, side: str, rate_hz: float | None) -> RepScore:
    recording = load_recording(imu_path, side)
    if rate_hz:
        recording = recording.resampled(rate_hz)
    reference = load_reference_reps(reps_path(imu_path), side)
    return score(run_detector(ExercisePhaseDetector().update, recording.samples()), reference)


def combined(scores: Sequence[RepScore]) -> RepScore:
    return RepScore(sum(s.reference for s in scores), sum(s.found for s in scores),
                    sum(s.false_reps for s in scores),
                    [e for s in scores for e in s.onset_errors_ms],
                    [e for s in scores for e in s.rom_errors_deg],
                    [e for s in scores for e in s.onset_delays_ms])


def print_table(rows: list[Row]) -> None:
    header = ("recording", "ref", "found %", "false", "onset err med/p95 ms",
              "ROM err med/p95 °", "delay med ms")
    lines = [header]
    for row in rows:
        d = row.as_dict()
        lines.append((row.label, str(d["reference"]), f"{d['found_pct']:.1f}",
                      str(d["false_reps"]),
                      f"{d['onset_error_median_ms']:.0f} / {d['onset_error_p95_ms']:.0f}",
                      f"{d['rom_error_median_deg']:.1f} / {d['rom_error_p95_deg']:.1f}",
                      f"{d['detection_delay_median_ms']:.0f}"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder of <name>_imu.csv + <name>_reps.csv")
    parser.add_argument("--rate", type=float, default=None,
                        help="resample every recording to this rate (Hz) first")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    recordings = sorted(p for p in args.data.glob("*" + IMU_SUFFIX) if reps_path(p).exists())
    if not recordings:
        print(f"no <name>{IMU_SUFFIX} with a reps file in {args.data}", file=sys.stderr)
        return 2
    rows: list[Row] = []
    quiet: list[Row] = []
    try:
        for path in recordings:
            for side in feet_in(path):
                result = evaluate(path, side, args.rate)
                label = f"{path.name.removesuffix(IMU_SUFFIX)} {side}"
                (rows if result.reference else quiet).append(Row(label, result))
    except (RecordingFormatError, KeyError, ValueError) as exc:
        print(f"cannot score {args.data}: {exc}", file=sys.stderr)
        return 2
    rate = f"{args.rate:g} Hz (resampled)" if args.rate else "as recorded"
    print(f"exercise repetitions, {len(recordings)} recordings, rate {rate}")
    overall = Row("overall", combined([row.score for row in rows]))
    print_table([*rows, overall])
    if quiet:
        false_quiet = sum(row.score.false_reps for row in quiet)
        print(f"quiet sides (no reference repetitions): {len(quiet)}, "
              f"repetitions found there: {false_quiet}")
    if args.json:
        args.json.write_text(json.dumps({
            "rate": rate, "rows": [row.as_dict() for row in [*rows, overall]],
            "quiet_sides": len(quiet),
            "quiet_false_reps": sum(row.score.false_reps for row in quiet)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
