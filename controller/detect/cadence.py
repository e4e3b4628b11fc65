"""Timed stepping (treadmill training): gait events from the clock, not from motion."""

from __future__ import annotations

from controller.types import GaitEvent, GaitEventKind, Sample


class CadenceTrigger:
    """A ``GaitDetector`` that emits toe-off and heel strike on a fixed step cycle.

    The cycle starts with the first sample; each cycle is toe-off, then heel strike after
    ``swing_fraction`` of the cycle. Sample values are ignored: the sensor still guards
    the session through the supervisor's checks.
    """

    def __init__(self, cadence_steps_per_min: float, swing_fraction: float) -> None:
        self._cycle_s = 60.0 / cadence_steps_per_min
        self._swing_s = swing_fraction * self._cycle_s
        self._origin_s: float | None = None
        self._emitted = 0
        """Events emitted so far: even counts are toe-offs, odd ones heel strikes."""

    def reset(self) -> None:
        self._origin_s = None
        self._emitted = 0

    def drain_notes(self) -> list[str]:
        """A timed cadence has no calibration to change."""
        return []

    def update(self, sample: Sample) -> list[GaitEvent]:
        if self._origin_s is None:
            self._origin_s = sample.t_s
        events: list[GaitEvent] = []
        while (due := self._due_s(self._emitted)) <= sample.t_s:
            kind = GaitEventKind.HEEL_STRIKE if self._emitted % 2 else GaitEventKind.TOE_OFF
            events.append(GaitEvent(kind, due, sample.t_s))
            self._emitted += 1
        return events

    def _due_s(self, index: int) -> float:
        assert self._origin_s is not None
        cycle, phase = divmod(index, 2)
        return self._origin_s + cycle * self._cycle_s + phase * self._swing_s
