"""Gait calibrations on disk: a small TOML file a therapist records once per fitting."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import tomli_w

from controller.detect.calibration import GaitCalibration

SECTION = "gait_calibration"


class CalibrationFileError(ValueError):
    """The calibration file is missing or does not hold a valid calibration."""


def save_calibration(path: Path, calibration: GaitCalibration, source: str) -> None:
    document = {
        "source": source,
        "calibrated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        SECTION: calibration.to_dict(),
    }
    path.write_text(tomli_w.dumps(document), encoding="utf-8")


def load_calibration(path: Path) -> GaitCalibration:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CalibrationFileError(f"{path}: no such calibration file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CalibrationFileError(f"{path}: cannot read calibration ({exc})") from None
    except RecursionError:
        raise CalibrationFileError(f"{path}: cannot read calibration (arrays or tables "
                                   "nested too deeply)") from None
    section = document.get(SECTION)
    if not isinstance(section, dict):
        raise CalibrationFileError(f"{path}: no [{SECTION}] table")
    try:
        return GaitCalibration.from_dict(section)
    except ValueError as exc:
        raise CalibrationFileError(f"{path}: {exc}") from None
    except OverflowError:
        raise CalibrationFileError(f"{path}: a number in [{SECTION}] is too large") from None
