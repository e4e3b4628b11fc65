"""Hasomed RehaStim 2 over a serial port, in ScienceMode 2 channel list mode.

A thin loop around :mod:`controller.devices.sciencemode`: a reader thread owns all reads
(as in pyserial's ``serial.threaded``), matches acknowledgements to the commands waiting
for them, and sends the Watchdog keep-alive whenever nothing was sent for
``keepalive_s``, but only while the control loop is alive: every call into the driver
(the supervisor calls :meth:`RehaStim2.check` each tick) is a heartbeat, and with no
heartbeat for ``keepalive_s`` the keep-alive stops, so the device's own watchdog turns
off the output of a loop that is stuck. Any thread may write, under a lock.

Timing choices, each a constructor argument:
* every command must be acknowledged within ``ack_timeout_s`` (100 ms). ``connect``,
  ``configure`` and ``stop`` wait for their answer; ``update`` does not, because the device
  answers in 10-24 ms and the control loop must not stall on it. A late or refused update
  is raised by the next call into the driver (or by :meth:`check`), at most one control
  tick later.
* ``update`` writes only when an amplitude changed; the keep-alive covers the silence.

Every exit path sends StopChannelListMode: ``close`` (waiting for the answer), and
``atexit``/SIGTERM/SIGINT through :mod:`controller.devices.exit_guard` (without waiting).
The port is closed in a ``finally``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import serial

from controller.devices import exit_guard
from controller.devices import sciencemode as sm
from controller.devices.base import ChannelSetup, StimulatorError
from controller.devices.serial_port import PORT_ERRORS, SerialPort, open_port, read_available

DEFAULT_BAUD = 460800
ACK_TIMEOUT_S = 0.1
KEEPALIVE_S = 0.5
HANDSHAKE_TIMEOUT_S = 2.0
"""The device repeats Init until it is answered; two seconds sees at least one."""
READ_POLL_S = 0.02
"""How long the reader blocks in one read; bounds keep-alive lateness and close time."""


@dataclass(eq=False)
class _Pending:
    name: str
    ack: sm.Command
    deadline_s: float
    result: int | None = None


class RehaStim2:
    """The :class:`~controller.devices.base.Stimulator` of a RehaStim 2 on ``port``.

    ``port`` is anything :func:`serial.serial_for_url` opens (a device path or a URL).
    """

    def __init__(
        self,
        port: str,
        *,
        baud: int = DEFAULT_BAUD,
        ack_timeout_s: float = ACK_TIMEOUT_S,
        keepalive_s: float = KEEPALIVE_S,
        handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port_name = port
        self.baud = baud
        self.ack_timeout_s = ack_timeout_s
        self.keepalive_s = keepalive_s
        self.handshake_timeout_s = handshake_timeout_s
        self._clock = clock
        self._serial: SerialPort | None = None
        self._reader: threading.Thread | None = None
        self._write_lock = threading.RLock()
        self._state = threading.Condition()
        self._pending: deque[_Pending] = deque()
        self._error: StimulatorError | None = None
        self._device_init_number: int | None = None
        self._connected = False
        self._number = 0
        self._last_sent_s = 0.0
        self._channels: tuple[ChannelSetup, ...] = ()
        self._main_interval_ms = 0.0
        self._output: tuple[sm.ChannelPulse, ...] | None = None
        """What we last told the device to put out; None while channel list mode is stopped."""
        self._halted = False
        """Set by :meth:`emergency_stop`: no output until :meth:`configure` again."""
        self._heartbeat_s = float("-inf")
        """When the control loop last called into the driver."""
        self.decoder = sm.Decoder()

    # -- Stimulator interface -------------------------------------------------------------

    @property
    def amplitude_step_ma(self) -> float:
        return float(sm.CURRENT_STEP_MA)

    def connect(self) -> None:
        """Open the port and answer the device's Init."""
        self.close()
        self._heartbeat_s = self._clock()
        try:
            self._serial = open_port(self.port_name, self.baud, serial.PARITY_EVEN, READ_POLL_S)
        except PORT_ERRORS as exc:
            raise StimulatorError(f"cannot open {self.port_name}: {exc}") from exc
        self._error = None
        self._device_init_number = None
        self._number = 0
        self._output = None
        self.decoder = sm.Decoder()
        self._reader = threading.Thread(target=self._read_loop, name="rehastim2-reader",
                                        daemon=True)
        self._reader.start()
        exit_guard.guard(self)
        with self._state:
            heard = self._state.wait_for(
                lambda: self._device_init_number is not None or self._error is not None,
                timeout=self.handshake_timeout_s)
            number = self._device_init_number
        if self._error is not None or not heard or number is None:
            self.close()
            raise self._error or StimulatorError(
                f"no Init from a RehaStim 2 on {self.port_name} within "
                f"{self.handshake_timeout_s:g} s")
        self._send(sm.InitAck(sm.Result.OK), number=number)
        self._connected = True

    def configure(self, channels: Sequence[ChannelSetup], frequency_hz: float) -> None:
        self._heartbeat_s = self._clock()
        self._require_connection()
        self._halted = False
        if self._output is not None:
            self._command(sm.StopChannelListMode(), "stop before reconfiguring")
            self._output = None
        self._channels = tuple(sorted(channels, key=lambda setup: setup.channel))
        self._main_interval_ms = 1000.0 / frequency_hz
        self._init_channel_list()

    def update(self, amplitudes_ma: Mapping[int, float]) -> None:
        self.check()
        self._require_connection()
        if self._halted:
            raise StimulatorError("output halted by an emergency stop; configure again first")
        configured = {setup.channel for setup in self._channels}
        unknown = set(amplitudes_ma) - configured
        if unknown:
            raise StimulatorError(f"channels {sorted(unknown)} were not configured")
        pulses = tuple(
            sm.ChannelPulse(setup.pulse_width_us,
                            sm.current_code_ma(amplitudes_ma.get(setup.channel, 0.0)))
            for setup in self._channels)
        if pulses == self._output:
            return
        if self._output is None:
            self._init_channel_list()
        self._send(sm.StartChannelListMode(pulses), ack=sm.Command.START_CHANNEL_LIST_MODE_ACK,
                   name="update")
        self._output = pulses

    def stop(self) -> None:
        """Stop all output and wait for the device to confirm it."""
        if self._serial is None:
            return
        self._output = None
        self._command(sm.StopChannelListMode(), "stop")
        self._number = 0

    def close(self) -> None:
        """Stop (best effort: a dead link must not keep the port open), then release it."""
        port = self._serial
        if port is None:
            return
        try:
            if self._connected and self._error is None:
                self.stop()
        except StimulatorError:
            self.emergency_stop()
        finally:
            self._connected = False
            self._serial = None
            exit_guard.release(self)
            port.close()
            if self._reader is not None and self._reader is not threading.current_thread():
                self._reader.join(timeout=1.0)
            self._reader = None

    # -- beyond the interface -------------------------------------------------------------

    def check(self) -> None:
        """Raise the first trouble seen since the last call: an error answer, a
        StimulationError from the device, a command left unanswered past its deadline, or
        a lost port. Called by every command and by the supervisor every tick: the
        heartbeat without which no keep-alive is sent."""
        self._heartbeat_s = self._clock()
        with self._state:
            error, self._error = self._error, None
            if error is None and self._pending and \
                    self._clock() > self._pending[0].deadline_s:
                late = self._pending.popleft()
                error = StimulatorError(
                    f"stimulator did not acknowledge {late.name} within "
                    f"{self.ack_timeout_s * 1000:g} ms")
        if error is not None:
            raise error

    def emergency_stop(self) -> None:
        """Write StopChannelListMode without waiting for anything: the exit-path stop, and
        the stop of a loop watchdog or a signal while the control loop is stuck. Output is
        refused from then on until :meth:`configure` is called again, so a loop that comes
        back cannot switch it on by itself.

        No ``flush()``: on a serial port that is ``tcdrain``, which waits for the other
        end to take the bytes and can block an exit path for good. ``write`` hands the
        bytes to the kernel, which sends them after the process is gone.
        """
        self._halted = True
        self._output = None
        port = self._serial
        if port is None:
            return
        locked = self._write_lock.acquire(timeout=0.05)
        try:
            port.write(sm.encode(sm.StopChannelListMode(), self._number))
        except PORT_ERRORS:
            pass
        finally:
            if locked:
                self._write_lock.release()

    # -- internals ------------------------------------------------------------------------

    def _require_connection(self) -> None:
        if not self._connected:
            raise StimulatorError(f"RehaStim 2 on {self.port_name} is not connected")

    def _init_channel_list(self) -> None:
        if not self._channels:
            raise StimulatorError("configure() the channels before stimulating")
        channels = tuple(setup.channel for setup in self._channels)
        self._command(sm.InitChannelListMode(channels, self._main_interval_ms),
                      "channel list mode init")

    def _command(self, message: sm.Message, name: str) -> None:
        """Send and wait for the acknowledgement; raise if it is late or not OK."""
        pending = self._send(message, ack=sm.ACK_OF[sm.Command(sm.command_of(message))],
                             name=name)
        assert pending is not None
        with self._state:
            self._state.wait_for(
                lambda: pending.result is not None or self._error is not None,
                timeout=max(0.0, pending.deadline_s - self._clock()))
            if pending in self._pending:
                self._pending.remove(pending)
        self.check()
        if pending.result is None:
            raise StimulatorError(
                f"stimulator did not acknowledge {name} within {self.ack_timeout_s * 1000:g} ms")
        if pending.result != sm.Result.OK:
            raise StimulatorError(f"stimulator refused {name}: {_result_text(pending.result)}")

    def _send(self, message: sm.Message, *, ack: sm.Command | None = None, name: str = "",
              number: int | None = None) -> _Pending | None:
        port = self._serial
        if port is None:
            raise StimulatorError(f"RehaStim 2 on {self.port_name} is not open")
        pending = None
        with self._write_lock:
            frame = sm.encode(message, self._number if number is None else number)
            if ack is not None:
                pending = _Pending(name, ack, self._clock() + self.ack_timeout_s)
                with self._state:
                    self._pending.append(pending)
            try:
                port.write(frame)
            except PORT_ERRORS as exc:
                raise StimulatorError(f"writing to {self.port_name} failed: {exc}") from exc
            self._last_sent_s = self._clock()
            self._number = (self._number + 1) % 256
        return pending

    def _read_loop(self) -> None:
        port = self._serial
        assert port is not None
        try:
            while self._serial is port:
                data = read_available(port)
                for packet in self.decoder.feed(data):
                    self._handle(packet)
                now_s = self._clock()
                if self._connected and now_s - self._last_sent_s >= self.keepalive_s and \
                        now_s - self._heartbeat_s < self.keepalive_s:
                    self._send(sm.Watchdog())
        except (*PORT_ERRORS, StimulatorError) as exc:
            if self._serial is port:
                self._fail(StimulatorError(f"lost the RehaStim 2 on {self.port_name}: {exc}"))

    def _handle(self, packet: sm.Packet) -> None:
        message = packet.message
        match message:
            case sm.Init():
                self._on_device_init(packet.number)
            case sm.Ack(command, result):
                with self._state:
                    for pending in self._pending:
                        if pending.ack == command:
                            pending.result = result
                            self._pending.remove(pending)
                            if result != sm.Result.OK and pending.name == "update":
                                self._error = StimulatorError(
                                    f"stimulator refused update: {_result_text(result)}")
                            break
                    self._state.notify_all()
            case sm.StimulationError(code):
                self._output = None
                self._fail(StimulatorError(f"stimulator stopped: {_error_text(code)}"))
            case sm.UnknownCommandAck():
                self._fail(StimulatorError("stimulator did not understand a command"))
            case _:
                pass

    def _on_device_init(self, number: int) -> None:
        """The device announces itself: at connection, or again after it reset itself
        (its watchdog expired): then whatever we configured is gone, which is a fault."""
        with self._state:
            first = self._device_init_number is None
            self._device_init_number = number
            self._state.notify_all()
        if first:
            return
        self._send(sm.InitAck(sm.Result.OK), number=number)
        if self._output is not None:
            self._output = None
            self._fail(StimulatorError("stimulator restarted and stopped its output"))

    def _fail(self, error: StimulatorError) -> None:
        with self._state:
            if self._error is None:
                self._error = error
            self._state.notify_all()


def _result_text(result: int) -> str:
    try:
        return sm.Result(result).name.lower().replace("_", " ")
    except ValueError:
        return f"result code {result}"


def _error_text(code: int) -> str:
    try:
        return sm.StimulationErrorCode(code).name.lower().replace("_", " ")
    except ValueError:
        return f"error code {code}"
