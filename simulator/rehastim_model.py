"""A sans-I/O model of the RehaStim 2 in ScienceMode 2 channel list mode.

Both the in-memory twin and the pseudo-terminal simulator drive this one model, so they
cannot drift apart. It refuses what the device refuses (parameters out of range, commands
in the wrong mode) with the device's result codes, stops by itself when the controller
goes silent for its watchdog time, and logs the stimulation it actually delivered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import overload

MAX_CHANNEL = 8
MAX_CURRENT_MA = 126
MIN_PULSE_WIDTH_US = 20
MAX_PULSE_WIDTH_US = 500
MIN_MAIN_INTERVAL_MS = 8.0
MAX_MAIN_INTERVAL_MS = 1025.0

RESULT_OK = 0
RESULT_TRANSFER_ERROR = -1
RESULT_PARAMETER_ERROR = -2
RESULT_WRONG_MODE = -3


class DeviceMode(str, Enum):
    IDLE = "idle"
    READY = "ready"
    """Channel list mode initialised, no output yet."""
    RUNNING = "running"


@dataclass(frozen=True, slots=True)
class Delivered:
    """One change of what the device actually puts out on a channel."""

    t_s: float
    channel: int
    current_ma: int
    pulse_width_us: int
    reason: str


DELIVERED_KEPT = 4096
"""Changes of output kept in memory: a 100 Hz gait session makes about 30 a step (ramps
up and down), so an hour would otherwise grow by tens of megabytes."""


class DeliveredLog(Sequence[Delivered]):
    """The most recent :data:`DELIVERED_KEPT` changes of output, oldest first, and the
    count of all of them (:attr:`total`), so a reader that writes them out elsewhere (the
    pty simulator's ``--delivered-log``) knows which ones it has not seen yet."""

    def __init__(self, kept: int = DELIVERED_KEPT) -> None:
        self._entries: deque[Delivered] = deque(maxlen=kept)
        self.total = 0

    def append(self, entry: Delivered) -> None:
        self._entries.append(entry)
        self.total += 1

    def since(self, total: int) -> list[Delivered]:
        """The entries appended after the log held ``total`` (those still kept)."""
        return list(self._entries)[max(0, len(self._entries) - (self.total - total)):]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Delivered]:
        return iter(self._entries)

    @overload
    def __getitem__(self, index: int) -> Delivered: ...

    @overload
    def __getitem__(self, index: slice) -> list[Delivered]: ...

    def __getitem__(self, index: int | slice) -> Delivered | list[Delivered]:
        if isinstance(index, slice):
            return list(self._entries)[index]
        return self._entries[index]


@dataclass
class RehaStimModel:
    """Device state and rules; every method takes the current time from its caller."""

    watchdog_s: float = 1.0
    mode: DeviceMode = DeviceMode.IDLE
    channels: tuple[int, ...] = ()
    main_interval_ms: float = 0.0
    output: dict[int, tuple[int, int]] = field(default_factory=dict)
    """channel -> (current mA, pulse width µs) being delivered now."""
    delivered: DeliveredLog = field(default_factory=DeliveredLog)
    last_heard_s: float | None = None

    def heard(self, now_s: float) -> None:
        """Any valid packet from the controller feeds the device watchdog."""
        self.last_heard_s = now_s

    def init_channel_list(self, channels: set[int], main_interval_ms: float, now_s: float) -> int:
        self.heard(now_s)
        if self.mode is DeviceMode.RUNNING:
            return RESULT_WRONG_MODE
        if not channels or any(not 1 <= ch <= MAX_CHANNEL for ch in channels):
            return RESULT_PARAMETER_ERROR
        if not MIN_MAIN_INTERVAL_MS <= main_interval_ms <= MAX_MAIN_INTERVAL_MS:
            return RESULT_PARAMETER_ERROR
        self.channels = tuple(sorted(channels))
        self.main_interval_ms = main_interval_ms
        self.mode = DeviceMode.READY
        return RESULT_OK

    def start_or_update(self, settings: Mapping[int, tuple[int, int]], now_s: float) -> int:
        """Apply (current mA, pulse width µs) for every initialised channel at once."""
        self.heard(now_s)
        if self.mode is DeviceMode.IDLE:
            return RESULT_WRONG_MODE
        if set(settings) != set(self.channels):
            return RESULT_PARAMETER_ERROR
        for current_ma, pulse_width_us in settings.values():
            if not 0 <= current_ma <= MAX_CURRENT_MA:
                return RESULT_PARAMETER_ERROR
            if not 0 <= pulse_width_us <= MAX_PULSE_WIDTH_US:
                return RESULT_PARAMETER_ERROR
        self.mode = DeviceMode.RUNNING
        for channel, (current_ma, pulse_width_us) in settings.items():
            delivered_pw = max(pulse_width_us, MIN_PULSE_WIDTH_US) if pulse_width_us else 0
            self._deliver(channel, current_ma, delivered_pw, now_s, "command")
        return RESULT_OK

    def stop(self, now_s: float, reason: str = "stop command") -> int:
        self.heard(now_s)
        self._stop_output(now_s, reason)
        self.mode = DeviceMode.IDLE
        return RESULT_OK

    def tick(self, now_s: float) -> None:
        """Let time pass: a silent controller gets its output stopped, as the device does."""
        if self.mode is DeviceMode.IDLE or self.last_heard_s is None:
            return
        if now_s - self.last_heard_s > self.watchdog_s:
            self._stop_output(now_s, "device watchdog: controller silent")
            self.mode = DeviceMode.IDLE

    @property
    def is_delivering(self) -> bool:
        return any(current for current, _ in self.output.values())

    def _stop_output(self, now_s: float, reason: str) -> None:
        for channel in list(self.output):
            self._deliver(channel, 0, 0, now_s, reason)

    def _deliver(self, channel: int, current_ma: int, pulse_width_us: int, now_s: float,
                 reason: str) -> None:
        effective = (current_ma, pulse_width_us) if current_ma else (0, 0)
        if self.output.get(channel, (0, 0)) == effective:
            return
        self.output[channel] = effective
        self.delivered.append(Delivered(now_s, channel, effective[0], effective[1], reason))
