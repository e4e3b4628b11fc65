"""What a tick emits, in one place: the observer seam.

Every consumer of a running session (the record, a live plot buffer, a test probe, a
benchmark) subclasses :class:`SessionObserver` and overrides the hooks it needs. The
session and the supervisor speak only to :class:`Observers`, which hands each call to
every observer that overrides that hook, so an observer that ignores samples costs
nothing per sample.

All hooks run on the control loop's thread and must return quickly: anything slow (disk,
network, drawing) belongs on the observer's own thread, fed by a queue or a ring buffer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from controller.types import Cue, DetectorEvent, Fault, Sample, SessionSummary, Unit


class SessionObserver:
    """Everything one tick can emit; each hook is a no-op until overridden."""

    def on_sample(self, sample: Sample) -> None:
        """A sample as the sensor delivered it (before any detector saw it)."""

    def on_event(self, event: DetectorEvent) -> None:
        """A detector event, stamped with when it happened and when it was certain."""

    def on_phase(self, t_s: float, phase: str) -> None:
        """The mode's machine entered ``phase``."""

    def on_unit(self, unit: Unit) -> None:
        """A unit of work closed: a step (gait) or a repetition (exercise)."""

    def on_cue(self, cue: Cue) -> None:
        """The patient is told something: lift, hold 3 s, lower slowly, rest, done."""

    def on_command(self, t_s: float, amplitudes_ma: Mapping[int, float]) -> None:
        """Amplitudes sent to the stimulator, in its own steps: what it delivers."""

    def on_fault(self, fault: Fault) -> None:
        """A fault latched; output is already zero when this is called."""

    def on_notice(self, t_s: float, kind: str, detail: str) -> None:
        """A limit enforced without a fault, a refused reset, a stop, a warning."""

    def on_tick(self, t_s: float) -> None:
        """The end of a control tick."""

    def on_finish(self, summary: SessionSummary) -> None:
        """The session has ended and output is off; nothing more will be emitted."""


_HOOKS = ("on_sample", "on_event", "on_phase", "on_unit", "on_cue", "on_command", "on_fault",
          "on_notice", "on_tick", "on_finish")


class Observers:
    """Fans each hook out to the observers that override it.

    It is also the supervisor's :class:`~controller.safety.SafetyLog` (command, fault,
    notice), so what the supervisor decides reaches the same observers as what the
    session sees.
    """

    def __init__(self, observers: Iterable[SessionObserver] = ()) -> None:
        self._observers: list[SessionObserver] = []
        self._calls: dict[str, list[Callable[..., None]]] = {hook: [] for hook in _HOOKS}
        for observer in observers:
            self.add(observer)

    def add(self, observer: SessionObserver) -> None:
        """Attach before the session starts (hooks are not locked against a running loop)."""
        self._observers.append(observer)
        for hook in _HOOKS:
            if getattr(type(observer), hook) is not getattr(SessionObserver, hook):
                self._calls[hook].append(getattr(observer, hook))

    def _emit(self, hook: str, *args: Any) -> None:
        for call in self._calls[hook]:
            call(*args)

    def sample(self, sample: Sample) -> None:
        for call in self._calls["on_sample"]:
            call(sample)

    def event(self, event: DetectorEvent) -> None:
        self._emit("on_event", event)

    def phase(self, t_s: float, phase: str) -> None:
        self._emit("on_phase", t_s, phase)

    def unit(self, unit: Unit) -> None:
        self._emit("on_unit", unit)

    def cue(self, cue: Cue) -> None:
        self._emit("on_cue", cue)

    def command(self, t_s: float, amplitudes_ma: Mapping[int, float]) -> None:
        self._emit("on_command", t_s, amplitudes_ma)

    def fault(self, fault: Fault) -> None:
        self._emit("on_fault", fault)

    def notice(self, t_s: float, kind: str, detail: str) -> None:
        self._emit("on_notice", t_s, kind, detail)

    def tick(self, t_s: float) -> None:
        for call in self._calls["on_tick"]:
            call(t_s)

    def finish(self, summary: SessionSummary) -> None:
        """Every observer hears the end, even if an earlier one fails; the first error is
        raised afterwards."""
        error: BaseException | None = None
        for call in self._calls["on_finish"]:
            try:
                call(summary)
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                error = error or exc
        if error is not None:
            raise error
