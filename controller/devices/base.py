"""The two interfaces every device driver implements.

Drivers report trouble by raising; the SafetySupervisor turns each exception into a
latched fault. Only the supervisor ever holds a :class:`Stimulator`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from controller.types import Sample


class DeviceError(Exception):
    """A device did something the controller cannot continue through."""


class StimulatorError(DeviceError):
    """The stimulator did not answer, answered with an error, or refused a command."""


class SensorError(DeviceError):
    """The motion sensor's stream is broken (port gone, too much garbage)."""


@dataclass(frozen=True, slots=True)
class ChannelSetup:
    """Per-channel settings fixed for a whole stimulation block."""

    channel: int
    pulse_width_us: int


class Stimulator(Protocol):
    """A multi-channel current stimulator (RehaStim 2 first)."""

    @property
    def amplitude_step_ma(self) -> float:
        """The device's amplitude resolution: it delivers whole multiples of this."""

    def connect(self) -> None: ...

    def configure(self, channels: Sequence[ChannelSetup], frequency_hz: float) -> None: ...

    def update(self, amplitudes_ma: Mapping[int, float]) -> None:
        """Set every configured channel's amplitude; a channel missing from the map is 0 mA."""

    def check(self) -> None:
        """Raise the first trouble seen since the last call (an unanswered or refused
        command, a lost link). Called every control tick, so a device that answers late
        is caught even when no command is being sent. It is also the loop's heartbeat:
        the keep-alive that holds the device's output on is sent only while it comes."""

    def stop(self) -> None:
        """Stop all output now and wait for the device to confirm it. Must be safe to
        call at any time, repeatedly."""

    def send_stop(self) -> None:
        """Stop all output now without waiting for the confirmation: the stop of a
        fault, sent from the control tick, which must not stand still for a device slow
        to answer. A stop answered late or refused is raised by :meth:`check`."""

    def emergency_stop(self) -> None:
        """Put a stop on the wire now, from any thread, without waiting for anything and
        without raising; output stays refused until :meth:`configure` is called again."""

    def close(self) -> None:
        """Stop output and release the device."""


class MotionSensor(Protocol):
    """A source of :class:`Sample` s (a serial IMU, a recording, a synthetic generator)."""

    def read(self) -> list[Sample]:
        """Return the samples that arrived since the last call (possibly none).

        A finished recording raises :class:`EOFError`.
        """

    def close(self) -> None: ...
