"""In-memory stimulator twin: the serial driver's conversation without the serial line.

It runs the same :class:`~controller.devices.sciencemode_host.ScienceModeHost` as the
serial driver against the device's side of ScienceMode 2
(:class:`~simulator.pty_rehastim.RehaStimDevice`) over the RehaStim 2 device model, handing
the bytes across in memory on the session clock. So it quantises, encodes, initialises
channel list mode again after a stop, keeps alive, refuses output after an emergency stop
and times out unanswered commands exactly as the driver does.

Two things differ, both about waiting: the device answers at once (its 10-24 ms is less
than a control tick), so a command that waits for its answer has it within the same call,
and one left unanswered fails at once instead of after 100 ms of blocking; and
:meth:`InMemoryStimulator.connect` makes the device announce itself again at once, where
the serial driver waits for the device's watchdog to expire (about a second) before the
device repeats its Init.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from enum import Enum

from controller.devices.base import ChannelSetup, StimulatorError
from controller.devices.sciencemode import CURRENT_STEP_MA
from controller.devices.sciencemode_host import ScienceModeHost
from simulator.pty_rehastim import RehaStimDevice
from simulator.rehastim_model import RehaStimModel

EMERGENCY_LOCK_S = 0.05
"""An emergency stop from another thread waits this long at most for a call in progress."""


class StimulatorMisbehaviour(str, Enum):
    NONE = "none"
    NO_ANSWER = "no_answer"
    """The device hears nothing and answers nothing (its own watchdog still runs)."""
    ERROR_ANSWER = "error_answer"
    """The device reports an electrode error and answers every command with an error."""


class InMemoryStimulator:
    def __init__(self, clock: Callable[[], float], model: RehaStimModel | None = None) -> None:
        self.model = model or RehaStimModel()
        self.device = RehaStimDevice(self.model)
        self.host = ScienceModeHost()
        self._clock = clock
        self._misbehaviour = StimulatorMisbehaviour.NONE
        self._lock = threading.RLock()

    @property
    def amplitude_step_ma(self) -> float:
        return float(CURRENT_STEP_MA)

    @property
    def misbehaviour(self) -> StimulatorMisbehaviour:
        return self._misbehaviour

    @misbehaviour.setter
    def misbehaviour(self, misbehaviour: StimulatorMisbehaviour) -> None:
        with self._lock:
            self._misbehaviour = misbehaviour
            self.device.silent = misbehaviour is StimulatorMisbehaviour.NO_ANSWER
            self.device.refuse = misbehaviour is StimulatorMisbehaviour.ERROR_ANSWER
            if misbehaviour is StimulatorMisbehaviour.ERROR_ANSWER:
                self.device.stimulation_error(self._clock())

    # -- Stimulator interface -------------------------------------------------------------

    def connect(self) -> None:
        with self._lock:
            now_s = self._clock()
            self.host = ScienceModeHost(ack_timeout_s=self.host.ack_timeout_s,
                                        keepalive_s=self.host.keepalive_s)
            self.device.announce(now_s)
            self._exchange()
            if self.host.device_init_number is None:
                raise StimulatorError("no Init from the simulated RehaStim 2")
            self.host.accept_device(now_s)
            self._exchange()

    def configure(self, channels: Sequence[ChannelSetup], frequency_hz: float) -> None:
        with self._lock:
            waiting = self.host.configure(channels, frequency_hz, self._clock())
            self._exchange()
            for pending in waiting:
                self.host.outcome(pending)

    def update(self, amplitudes_ma: Mapping[int, float]) -> None:
        with self._lock:
            try:
                self.host.update(amplitudes_ma, self._clock())
            finally:
                self._exchange()  # a refusal queued a stop: the device hears it all the same

    def stop(self) -> None:
        with self._lock:
            pending = self.host.stop(self._clock())
            self._exchange()
            self.host.outcome(pending)

    def send_stop(self) -> None:
        with self._lock:
            self.host.stop(self._clock(), waited=False)
            self._exchange()

    def emergency_stop(self) -> None:
        """Whoever calls (a watchdog, a signal handler): the Stop goes out at once; output
        stays refused until the next configure, as on the serial driver."""
        frame = self.host.emergency_stop()
        locked = self._lock.acquire(timeout=EMERGENCY_LOCK_S)
        try:
            self.device.receive(frame, self._clock())
        finally:
            if locked:
                self._lock.release()

    def check(self) -> None:
        """The loop's heartbeat; raises what the device reported, or an answer overdue."""
        with self._lock:
            now_s = self._clock()
            host = self.host
            host.heartbeat(now_s)
            self._exchange(now_s)
            host.check(now_s)

    def close(self) -> None:
        """Stop (best effort, as the driver: a dead link gets an emergency stop)."""
        with self._lock:
            try:
                if self.host.connected and not self.host.has_error:
                    self.stop()
            except StimulatorError:
                self.emergency_stop()
            finally:
                self.host.connected = False

    def tick(self) -> None:
        """Let time pass on the line: the device's watchdog, the host's keep-alive."""
        with self._lock:
            self._exchange()

    def _exchange(self, now_s: float | None = None) -> None:
        """Hand the host's bytes to the device and the device's answers back, now."""
        if now_s is None:
            now_s = self._clock()
        host, device = self.host, self.device
        host.keep_alive(now_s)
        data = host.data_to_send()
        if data:
            device.receive(data, now_s)
        answer = device.outgoing(now_s)
        if answer:
            host.receive_data(answer, now_s)
