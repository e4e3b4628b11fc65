"""Where a recorded walk turns, found from the foot's own rotation about the vertical.

Scoring keeps turns apart because the reference may lack a turning step. The turn windows
come from the data, never from per-file constants, so a walk nobody has looked at is
scored the same way: the vertical is the accelerometer's mean direction while the limb is
still, the heading is the angular velocity about it integrated over time, and a turn is
where the heading changes by more than ``TURN_DEG`` within ``SPAN_S``. The sagittal
rotation of each stride leaks into that projection (the sensor pitches) but it goes out
and back within the stride, so over two seconds it cancels.
"""

from __future__ import annotations

import numpy as np

from controller.devices.recording import Recording

TURN_DEG = 60.0
"""Heading change that makes a turn (a walk's drift stays far below it)."""
SPAN_S = 2.0
"""The window the heading change is measured over: a walking turn takes one or two strides."""
STILL_DPS = 20.0
MERGE_S = 1.0
"""Turn windows closer than this are one turn (the heading pauses while a foot is planted)."""


def turn_windows(recording: Recording) -> list[tuple[float, float]]:
    """(start_s, end_s) of every turn in one foot's recording."""
    t_s, gyro_dps = recording.t_s, recording.gyro_dps
    speed_dps = np.linalg.norm(gyro_dps, axis=1)
    still = speed_dps < STILL_DPS
    acc = recording.acc_mps2[still] if still.any() else recording.acc_mps2
    up = acc.mean(axis=0)
    up /= np.linalg.norm(up)
    period_s = float(np.median(np.diff(t_s)))
    heading_deg = np.cumsum(gyro_dps @ up) * period_s
    half = max(1, round(SPAN_S / 2 / period_s))
    padded = np.pad(heading_deg, half, mode="edge")
    change_deg = np.abs(padded[2 * half:] - padded[: -2 * half])
    turning = change_deg > TURN_DEG
    windows: list[tuple[float, float]] = []
    for start, end in runs(turning):
        window = (float(t_s[start]), float(t_s[end - 1]))
        if windows and window[0] - windows[-1][1] < MERGE_S:
            windows[-1] = (windows[-1][0], window[1])
        else:
            windows.append(window)
    return windows


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index ranges where ``mask`` holds."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
