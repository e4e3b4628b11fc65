"""A heel-off reference from motion-capture heel-marker trajectories (benchmark only).

The shared walks label heel strikes and toe-offs but not heel-off, the event the default
protocol starts stimulation on. Where a recording comes with foot-marker trajectories
(``*_mocap_markers.csv``: ``L_FCC_z``/``R_FCC_z`` heel height in mm, frame 0 = IMU sample
0), heel-off is derived from them by this rule, within each reference stance
[heel strike, next toe-off]:

1. Foot-flat ends at the last frame before toe-off where the heel marker's vertical speed
   (central difference) is below ``FLAT_SPEED_MMPS``: the heel is resting on the floor,
   up to marker noise. Its height there is the foot-flat level.
2. Heel-off is the first moment after that frame when the heel stands ``RISE_MM`` above
   the foot-flat level (linear interpolation between frames).

Why not "above the stance minimum": the calcaneus marker sits above and behind the
contact point, so it dips right after heel strike and rises ~10 mm as the foot rolls
flat. The stance minimum is therefore the loading dip, not foot-flat.

Uncertainty: on walk 1 the rule's heel-off moves by about -10/+17 ms when the rise is
taken as 3 or 10 mm instead of 5 mm (``RISE_SPREAD_MM``); the mocap frame is 10 ms; and
marker-based events carry their own offset against force plates. Treat heel-off errors
within ±20 ms as inside the reference's own uncertainty.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from controller.devices.recording import ReferenceEvent
from controller.types import GaitEventKind

MARKERS_SUFFIX = "_mocap_markers.csv"
FLAT_SPEED_MMPS = 20.0
RISE_MM = 5.0
RISE_SPREAD_MM = (3.0, 10.0)
"""Other rise thresholds, printed so the reader sees how much the rule itself moves."""
MAX_STANCE_S = 1.0
"""A longer heel-strike-to-toe-off interval is a turn or a missing event: no reference."""


def markers_path(imu_path: Path, suffix: str) -> Path:
    """The marker file that goes with an IMU recording ``<name><suffix>``."""
    return imu_path.with_name(imu_path.name.removesuffix(suffix) + MARKERS_SUFFIX)


def marker_mm(path: Path, foot: str, marker: str, axes: str = "xyz") -> tuple[
        np.ndarray, np.ndarray]:
    """Time (s) and the ``axes`` coordinates (mm, one column each) of one foot's marker
    (``TOE``, ``FCC``, ``FM5``)."""
    columns = [f"{'L' if foot == 'left' else 'R'}_{marker}_{axis}" for axis in axes]
    with path.open(newline="") as handle:
        header = next(csv.reader(handle))
        data = np.loadtxt(handle, delimiter=",", ndmin=2,
                          usecols=[header.index(c) for c in ["time_s", *columns]])
    return data[:, 0], data[:, 1:]


def heel_height_mm(path: Path, foot: str) -> tuple[np.ndarray, np.ndarray]:
    """Time (s) and vertical heel-marker position (mm) of one foot."""
    t_s, z_mm = marker_mm(path, foot, "FCC", "z")
    return t_s, z_mm[:, 0]


def heel_offs(
    t_s: np.ndarray,
    heel_mm: np.ndarray,
    reference: Sequence[ReferenceEvent],
    rise_mm: float = RISE_MM,
) -> list[ReferenceEvent]:
    """Heel-off events by the module's rule, one per reference stance that has a toe-off."""
    strikes = [r.t_s for r in reference if r.kind is GaitEventKind.HEEL_STRIKE]
    toe_offs = [r.t_s for r in reference if r.kind is GaitEventKind.TOE_OFF]
    speed_mmps = np.abs(np.gradient(heel_mm, t_s))
    events: list[ReferenceEvent] = []
    for strike_s in strikes:
        toe_off_s = next((t for t in toe_offs if t > strike_s), None)
        if toe_off_s is None or toe_off_s - strike_s > MAX_STANCE_S:
            continue
        stance = np.flatnonzero((t_s >= strike_s) & (t_s <= toe_off_s))
        flat = stance[speed_mmps[stance] < FLAT_SPEED_MMPS]
        if not flat.size:
            continue
        level_mm = heel_mm[flat[-1]] + rise_mm
        above = np.flatnonzero(heel_mm[flat[-1] :] >= level_mm)
        if not above.size:
            continue
        j = flat[-1] + int(above[0])
        fraction = (level_mm - heel_mm[j - 1]) / (heel_mm[j] - heel_mm[j - 1])
        t_event = float(t_s[j - 1] + fraction * (t_s[j] - t_s[j - 1]))
        if t_event < toe_off_s:
            events.append(ReferenceEvent(GaitEventKind.HEEL_OFF, t_event))
    return events
