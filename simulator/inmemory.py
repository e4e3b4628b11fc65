"""In-memory stimulator twin: the Stimulator interface over the RehaStim 2 device model.

It quantises and encodes values the way the serial driver does, records every command it
receives, and can be told to misbehave (stop answering, answer with an error) to test
the supervisor's fault handling without a serial line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from controller.devices.base import ChannelSetup, StimulatorError
from controller.devices.sciencemode import CURRENT_STEP_MA, current_code_ma
from simulator.rehastim_model import RESULT_OK, RehaStimModel


class StimulatorMisbehaviour(str, Enum):
    NONE = "none"
    NO_ANSWER = "no_answer"
    ERROR_ANSWER = "error_answer"


@dataclass(frozen=True, slots=True)
class ReceivedCommand:
    t_s: float
    name: str
    amplitudes_ma: tuple[tuple[int, int], ...] = ()


class InMemoryStimulator:
    def __init__(self, clock: Callable[[], float], model: RehaStimModel | None = None) -> None:
        self.model = model or RehaStimModel()
        self.received: list[ReceivedCommand] = []
        self.misbehaviour = StimulatorMisbehaviour.NONE
        self._clock = clock
        self._pulse_widths_us: dict[int, int] = {}
        self._halted = False
        self.connected = False

    @property
    def amplitude_step_ma(self) -> float:
        return float(CURRENT_STEP_MA)

    def connect(self) -> None:
        self._answer("connect", RESULT_OK)
        self.connected = True

    def configure(self, channels: Sequence[ChannelSetup], frequency_hz: float) -> None:
        self._halted = False
        self._pulse_widths_us = {setup.channel: setup.pulse_width_us for setup in channels}
        now = self._clock()
        result = self.model.init_channel_list(set(self._pulse_widths_us), 1000.0 / frequency_hz,
                                              now)
        self._answer("configure", result)

    def update(self, amplitudes_ma: Mapping[int, float]) -> None:
        if self._halted:
            raise StimulatorError("output halted by an emergency stop; configure again first")
        unknown = set(amplitudes_ma) - set(self._pulse_widths_us)
        if unknown:
            raise StimulatorError(f"channels {sorted(unknown)} were not configured")
        settings = {
            channel: (current_code_ma(amplitudes_ma.get(channel, 0.0)), width)
            for channel, width in self._pulse_widths_us.items()
        }
        now = self._clock()
        self.received.append(ReceivedCommand(
            now, "update", tuple((ch, current) for ch, (current, _) in sorted(settings.items()))))
        self._answer("update", self.model.start_or_update(settings, now))

    def stop(self) -> None:
        now = self._clock()
        self.received.append(ReceivedCommand(now, "stop"))
        if self.misbehaviour is StimulatorMisbehaviour.NO_ANSWER:
            raise StimulatorError("stimulator did not acknowledge stop within 100 ms")
        self.model.stop(now)

    def emergency_stop(self) -> None:
        """Stop now, whoever calls (a watchdog, a signal handler); output stays refused
        until the next configure, as on the serial driver."""
        self._halted = True
        self.model.stop(self._clock(), "emergency stop")

    def check(self) -> None:
        """A twin told to misbehave reports it here as the serial driver would."""
        self._answer("the last command", RESULT_OK)

    def close(self) -> None:
        self.stop()
        self.connected = False

    def tick(self) -> None:
        """Let the device's own watchdog see the time pass."""
        self.model.tick(self._clock())

    def _answer(self, command: str, result: int) -> None:
        if self.misbehaviour is StimulatorMisbehaviour.NO_ANSWER:
            raise StimulatorError(f"stimulator did not acknowledge {command} within 100 ms")
        if self.misbehaviour is StimulatorMisbehaviour.ERROR_ANSWER:
            self.model.stop(self._clock(), "stimulation module error")
            raise StimulatorError(f"stimulator answered {command} with an error: electrode error")
        if result != RESULT_OK:
            raise StimulatorError(f"stimulator refused {command} (result code {result})")
