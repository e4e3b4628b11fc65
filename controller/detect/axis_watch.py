"""The sagittal axis of a walking limb, found from the walk as it starts and checked stride by stride.

Both gait detectors project the angular velocity on one axis, positive in swing. This is
where that axis comes from, without a warm-up and without batch work in a control tick:

* **Found at the first strong movement.** Foot and shank rotate mostly about the
  medio-lateral axis, so the principal axis of the angular velocity while the limb moves
  is that axis. When the limb first rotates faster than ``sign_dps`` it is taken from the
  second moments gathered so far (one 3×3 eigen-decomposition, about 30 µs), then refined
  sample by sample (one power-iteration step) until strides have been confirmed.
* **Its sign from physics, then from heel strikes.** The first strong rotation of a limb
  starting to walk is the push-off (heel rising, or the shank rolling forward over the
  foot), never the swing, which follows it; weight shifts before it are slower. So the
  axis starts with the sign that makes that rotation negative (on the four feet of the
  shared walks and the synthetic foot and shank, the first rotation past 200 °/s is). Every
  heel strike confirmed afterwards votes: the rotation just before an impact is swing, so
  it must be positive. ``FLIP_VOTES`` impacts in a row that disagree turn the axis round.
* **A stored calibration is checked the same way**: a sensor remounted the other way round
  gives reversed votes from the first strides and the axis is replaced, with a note.

An impact counts as a heel strike only when the limb rotated fast before it and was calm
after it (the push-off jolt is followed by the swing), which is known ``POST_IMPACT_S``
after the impact: the votes are late, the axis they correct is used from then on.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from controller.detect.calibration import IMPACT_MIN_MPS2, MOVING_DPS, POST_IMPACT_S, PRE_IMPACT_S
from controller.types import Vector3

SIGN_SHARE = 0.8
"""The axis is taken when the limb first rotates faster than this share of the typical
push-off peak (weight shifts and fidgeting stay below it)."""
FLIP_VOTES = 2
AXIS_FORGET = 0.9
"""Per confirmed stride, the weight the past keeps in the moments (follows a slipping sensor)."""
SETTLED_STRIDES = 2
"""Confirmed strides after which the axis is refined per stride instead of per sample."""
IMPACT_FRACTION = 0.5
PEAK_GAP_S = 0.1
HISTORY_S = PRE_IMPACT_S[0] + POST_IMPACT_S[1] + 0.05


class AxisWatch:
    """Finds and keeps the swing-positive sagittal axis of one sensor."""

    def __init__(self, axis: Vector3 | None, impact_mps2: float, stored: bool,
                 push_off_dps: float = 250.0) -> None:
        self.axis: Vector3 | None = axis
        self.flipped = False
        """Set when the axis was turned round; the detector clears it after re-syncing."""
        self.notes: list[str] = []
        """What the watch changed, in words, for the session record (drained by the user)."""
        self._stored = stored
        self._impact_mps2 = impact_mps2
        self._moments = [0.0] * 6
        """Sums of gx², gy², gz², gx·gy, gx·gz, gy·gz over moving samples: Python floats,
        since numpy's per-element access cost more than the rest of a sample's work."""
        self._sign_dps = SIGN_SHARE * push_off_dps
        self._history: deque[tuple[float, float, float, float, float]] = deque()
        """(t, gx, gy, gz, speed) for the impact check."""
        self._candidate: tuple[float, float] | None = None
        self._votes: deque[bool] = deque(maxlen=FLIP_VOTES)
        self.strides = 0
        self.speed_dps = 0.0
        """The angular speed of the last sample fed (the detector's stillness test uses it)."""

    def feed(self, t_s: float, gyro_dps: Vector3, acc_norm_mps2: float) -> None:
        gx, gy, gz = gyro_dps
        speed = self.speed_dps = math.sqrt(gx * gx + gy * gy + gz * gz)
        history = self._history
        history.append((t_s, gx, gy, gz, speed))
        while t_s - history[0][0] > HISTORY_S:
            history.popleft()
        if speed > MOVING_DPS:
            self._gather(gx, gy, gz, speed)
        self._watch_impact(t_s, acc_norm_mps2)

    def _gather(self, gx: float, gy: float, gz: float, speed: float) -> None:
        m = self._moments
        m[0] += gx * gx
        m[1] += gy * gy
        m[2] += gz * gz
        m[3] += gx * gy
        m[4] += gx * gz
        m[5] += gy * gz
        if self.axis is None:
            if speed > self._sign_dps:
                self._first_axis((gx, gy, gz))
        elif self.strides < SETTLED_STRIDES and not self._stored:
            self._refine()

    def _symmetric(self) -> np.ndarray:
        xx, yy, zz, xy, xz, yz = self._moments
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])

    def _first_axis(self, push_off_dps: Vector3) -> None:
        _, vectors = np.linalg.eigh(self._symmetric())
        axis = vectors[:, -1]
        if float(np.dot(axis, push_off_dps)) > 0:  # the push-off must come out negative
            axis = -axis
        self.axis = (float(axis[0]), float(axis[1]), float(axis[2]))

    def _refine(self) -> None:
        """One power-iteration step from the current axis (which keeps its sign)."""
        assert self.axis is not None
        xx, yy, zz, xy, xz, yz = self._moments
        x, y, z = self.axis
        nx = xx * x + xy * y + xz * z
        ny = xy * x + yy * y + yz * z
        nz = xz * x + yz * y + zz * z
        norm = math.sqrt(nx * nx + ny * ny + nz * nz)
        if norm > 0.0:
            self.axis = (nx / norm, ny / norm, nz / norm)

    def _watch_impact(self, t_s: float, acc_norm_mps2: float) -> None:
        threshold = max(IMPACT_MIN_MPS2, IMPACT_FRACTION * self._impact_mps2)
        candidate = self._candidate
        if acc_norm_mps2 > threshold and (
                candidate is None or acc_norm_mps2 > candidate[1]
                and t_s - candidate[0] < PEAK_GAP_S):
            self._candidate = (t_s, acc_norm_mps2)
            return
        if candidate is not None and t_s - candidate[0] >= POST_IMPACT_S[1]:
            self._candidate = None
            self._judge(*candidate)

    def _judge(self, t_impact_s: float, peak_mps2: float) -> None:
        """Was it a heel strike (fast before, calm after)? If so, its swing votes on the sign."""
        before_from, before_to = t_impact_s - PRE_IMPACT_S[0], t_impact_s - PRE_IMPACT_S[1]
        after_from, after_to = t_impact_s + POST_IMPACT_S[0], t_impact_s + POST_IMPACT_S[1]
        before = [h for h in self._history if before_from <= h[0] <= before_to]
        after = [h[4] for h in self._history if after_from <= h[0] <= after_to]
        if not before or not after or self.axis is None:
            return
        speed_before = sum(h[4] for h in before) / len(before)
        speed_after = sum(after) / len(after)
        if not (speed_before > MOVING_DPS and speed_before > 1.5 * speed_after):
            return
        ax, ay, az = self.axis
        swing_dps = sum(h[1] * ax + h[2] * ay + h[3] * az for h in before) / len(before)
        self.strides += 1
        self._impact_mps2 += 0.2 * (peak_mps2 - self._impact_mps2)
        self._votes.append(swing_dps > 0)
        if len(self._votes) == FLIP_VOTES and not any(self._votes):
            self._flip()
        if self.strides >= SETTLED_STRIDES:
            self._refine()
            self._moments = [value * AXIS_FORGET for value in self._moments]

    def _flip(self) -> None:
        assert self.axis is not None
        self.axis = (-self.axis[0], -self.axis[1], -self.axis[2])
        self.flipped = True
        self._votes.clear()
        if self._stored:
            self.notes.append(
                f"the stored calibration does not match this walk: the last {FLIP_VOTES} "
                "heel strikes came after rotation the wrong way (a sensor turned round?); "
                "its axis is replaced by the walk's own")
        else:
            self.notes.append(f"swing direction corrected after {FLIP_VOTES} heel strikes")
