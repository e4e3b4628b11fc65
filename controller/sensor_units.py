"""Is the stream in the units and at the rate the detectors assume?

A sensor set up wrongly still streams plausible-looking numbers: gyroscope data in rad/s
never passes the detectors' thresholds (a walking foot peaks at 6 rad/s, read as 6 °/s),
an accelerometer in g reads 1 at rest, a unit left at its factory 10 Hz is far too slow to
time a swing. The session would run, stimulate nothing and end "completed". So the first
seconds of the stream are judged here, and a wrong setup is named in a fault that no
reset clears (the stream does not change its units by itself).
"""

from __future__ import annotations

import math

WINDOW_S = 2.0
"""The stream is judged in windows of this length."""
G_AT_REST_RANGE = (0.5, 2.0)
"""An accelerometer whose median norm lies here reads in g (m/s² would give ~9.8)."""
MOVING_ACC_RANGE_MPS2 = 5.0
"""A window whose acceleration norm spans this much holds movement (a step, a lift)."""
MOVING_GYRO_MIN = 20.0
"""Movement that size turns a limb far faster than this in °/s; in rad/s it stays below."""
RATE_SHARE = 0.9
"""A measured rate this share of the minimum still passes (timestamps jitter)."""


class UnitsCheck:
    """Judges rate and accelerometer units on the first window, gyroscope units on the
    first window that holds movement; then stays quiet."""

    def __init__(self, min_rate_hz: float) -> None:
        self._min_rate_hz = min_rate_hz
        self.problem = ""
        """What is wrong, in words ('' while nothing is)."""
        self._rate_and_acc_judged = False
        self._gyro_judged = False
        self._start_s: float | None = None
        self._count = 0
        self._norms: list[float] = []
        self._gyro_max = 0.0

    @property
    def rate_judged(self) -> bool:
        """The first window's rate has been judged (from here the sensor watch measures
        the usable rate on its own, for the rest of the session)."""
        return self._rate_and_acc_judged or bool(self.problem)

    @property
    def done(self) -> bool:
        return bool(self.problem) or (self._rate_and_acc_judged and self._gyro_judged)

    def observe(self, t_s: float, acc_mps2: tuple[float, float, float],
                gyro_dps: tuple[float, float, float]) -> str:
        """Take one sample; return a problem the moment it is found, else ''."""
        if self.done:
            return ""
        if self._start_s is None:
            self._start_s = t_s
        self._count += 1
        self._norms.append(math.sqrt(sum(a * a for a in acc_mps2)))
        self._gyro_max = max(self._gyro_max, max(abs(g) for g in gyro_dps))
        span_s = t_s - self._start_s
        if span_s < WINDOW_S:
            return ""
        if not self._rate_and_acc_judged:
            self._rate_and_acc_judged = True
            self.problem = self._rate(span_s) or self._acc_units()
        if not self.problem and max(self._norms) - min(self._norms) > MOVING_ACC_RANGE_MPS2:
            self._gyro_judged = True
            if self._gyro_max < MOVING_GYRO_MIN:
                self.problem = (
                    f"the gyroscope reads at most {self._gyro_max:.1f} while the accelerometer "
                    "shows the limb moving: it reports rad/s, the controller needs °/s "
                    "(set the sensor's output units)")
        self._start_s, self._count, self._norms, self._gyro_max = t_s, 0, [], 0.0
        return self.problem

    def restart_window(self) -> None:
        """Drop the window in progress unjudged: a silence inside it is a fault of its own,
        and a rate measured across it would name a healthy sensor too slow for good."""
        self._start_s, self._count, self._norms, self._gyro_max = None, 0, [], 0.0

    def _rate(self, span_s: float) -> str:
        rate_hz = (self._count - 1) / span_s
        if rate_hz >= RATE_SHARE * self._min_rate_hz:
            return ""
        return (f"the sensor streams {rate_hz:.0f} samples/s; this mode needs at least "
                f"{self._min_rate_hz:g} (set the IMU's output rate on the Devices tab or "
                "with its own tool)")

    def _acc_units(self) -> str:
        median = sorted(self._norms)[len(self._norms) // 2]
        low, high = G_AT_REST_RANGE
        if low < median < high:
            return (f"the accelerometer reads {median:.2f} at rest: it reports g, the "
                    "controller needs m/s² (set the sensor's output units)")
        return ""
