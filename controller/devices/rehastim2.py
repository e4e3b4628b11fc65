"""Hasomed RehaStim 2 over a serial port, in ScienceMode 2 channel list mode.

A port and a reader thread around :class:`~controller.devices.sciencemode_host.ScienceModeHost`,
which holds the whole conversation (handshake, packet numbers, acknowledgements and their
deadlines, keep-alive, re-initialisation after a stop). The reader thread
(:class:`~controller.devices.serial_port.PortReader`) feeds the host what the device sends
and lets it send the keep-alive, but only while the control loop is alive: every call into
the driver (the supervisor calls :meth:`RehaStim2.check` each tick) is a heartbeat, and
with no heartbeat for ``keepalive_s`` the keep-alive stops, so the device's own watchdog
turns off the output of a loop that is stuck. One lock guards the host; any thread may
call in.

Timing choices, each a constructor argument, refused unless finite and no longer than the
design's (an infinite or NaN deadline would switch its check off):
* every command must be acknowledged within ``ack_timeout_s`` (100 ms). ``connect``,
  ``configure`` and ``stop`` wait for their answer; ``update`` does not, because the device
  answers in 10-24 ms and the control loop must not stall on it. A late or refused update
  is raised by the next call into the driver (or by :meth:`check`), at most one control
  tick later.
* ``update`` writes only when an amplitude changed; the keep-alive covers the silence,
  and while output is on it is an acknowledged poll (see the host), so a device that
  stops answering at a steady amplitude is a fault within about 150 ms.
* an amplitude or charge beyond the hard limits of :mod:`controller.safety` is refused by
  the host before anything is written, and the output is stopped.

Every exit path sends StopChannelListMode: ``close`` (waiting for the answer), and
``atexit``/SIGTERM/SIGINT through :mod:`controller.devices.exit_guard` (without waiting).
The port is closed in a ``finally``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

import serial

from controller.devices import exit_guard
from controller.devices import sciencemode as sm
from controller.devices.base import ChannelSetup, StimulatorError
from controller.devices.sciencemode_host import (
    ACK_TIMEOUT_S,
    KEEPALIVE_S,
    PendingAck,
    ScienceModeHost,
    check_timing,
)
from controller.devices.serial_port import PORT_ERRORS, PortReader, SerialPort, open_port

DEFAULT_BAUD = 460800
HANDSHAKE_TIMEOUT_S = 2.0
"""The device repeats Init until it is answered; two seconds sees at least one."""
HANDSHAKE_TIMEOUT_MAX_S = 10.0
READ_POLL_S = 0.02
"""How long the reader blocks in one read; bounds keep-alive lateness and close time."""


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
        self.host = ScienceModeHost(ack_timeout_s=ack_timeout_s, keepalive_s=keepalive_s)
        """Refuses timings that are not finite and in range, before anything is opened."""
        self.ack_timeout_s = self.host.ack_timeout_s
        self.keepalive_s = self.host.keepalive_s
        self.handshake_timeout_s = check_timing("handshake_timeout_s", handshake_timeout_s,
                                                HANDSHAKE_TIMEOUT_MAX_S)
        self._clock = clock
        self._serial: SerialPort | None = None
        self._reader: PortReader | None = None
        self._state = threading.Condition(threading.RLock())
        """Guards the host and the port's writes; notified on every answer."""

    @property
    def decoder(self) -> sm.Decoder:
        return self.host.decoder

    # -- Stimulator interface -------------------------------------------------------------

    @property
    def amplitude_step_ma(self) -> float:
        return float(sm.CURRENT_STEP_MA)

    def connect(self) -> None:
        """Open the port and answer the device's Init."""
        self.close()
        self.host = ScienceModeHost(ack_timeout_s=self.ack_timeout_s,
                                    keepalive_s=self.keepalive_s)
        try:
            self._serial = open_port(self.port_name, self.baud, serial.PARITY_EVEN, READ_POLL_S)
        except PORT_ERRORS as exc:
            raise StimulatorError(f"cannot open {self.port_name}: {exc}") from exc
        self._reader = PortReader(self._serial, "rehastim2-reader", self._on_read,
                                  self._on_lost)
        self._reader.start()
        exit_guard.guard(self)
        with self._state:
            heard = self._state.wait_for(
                lambda: self.host.device_init_number is not None or self.host.has_error,
                timeout=self.handshake_timeout_s)
            try:
                self.host.check(self._clock())
                if not heard:
                    raise StimulatorError(f"no Init from a RehaStim 2 on {self.port_name} "
                                          f"within {self.handshake_timeout_s:g} s")
                self.host.accept_device(self._clock())
                self._flush()
            except StimulatorError:
                self.close()
                raise

    def configure(self, channels: Sequence[ChannelSetup], frequency_hz: float) -> None:
        with self._state:
            self._require_port()
            waiting = self.host.configure(channels, frequency_hz, self._clock())
            self._flush()
        for pending in waiting:
            self._wait(pending)

    def update(self, amplitudes_ma: Mapping[int, float]) -> None:
        with self._state:
            self._require_port()
            try:
                self.host.update(amplitudes_ma, self._clock())
            finally:
                self._flush()  # a refusal queued a stop: it goes out all the same

    def stop(self) -> None:
        """Stop all output and wait for the device to confirm it."""
        with self._state:
            if self._serial is None:
                return
            pending = self.host.stop(self._clock())
            self._flush()
        self._wait(pending)

    def send_stop(self) -> None:
        """Stop all output without waiting for the answer, which :meth:`check` judges."""
        with self._state:
            if self._serial is None:
                return
            self.host.stop(self._clock(), waited=False)
            self._flush()

    def close(self) -> None:
        """Stop (best effort: a dead link must not keep the port open), then release it."""
        port = self._serial
        if port is None:
            return
        try:
            if self.host.connected and not self.host.has_error:
                self.stop()
        except StimulatorError:
            self.emergency_stop()
        finally:
            self.host.connected = False
            self._serial = None
            exit_guard.release(self)
            if self._reader is not None:
                self._reader.stop(join_s=0.0)
            port.close()
            if self._reader is not None:
                self._reader.stop()
            self._reader = None

    # -- beyond the interface -------------------------------------------------------------

    def check(self) -> None:
        """Raise the first trouble seen since the last call: an error answer, a
        StimulationError from the device, a command left unanswered past its deadline, or
        a lost port. Called by every command and by the supervisor every tick: the
        heartbeat without which no keep-alive is sent."""
        with self._state:
            self.host.check(self._clock(), unread_answers=self._bytes_waiting())

    def emergency_stop(self) -> None:
        """Write StopChannelListMode without waiting for anything: the exit-path stop, and
        the stop of a loop watchdog or a signal while the control loop is stuck. Output is
        refused from then on until :meth:`configure` is called again, so a loop that comes
        back cannot switch it on by itself.

        No ``flush()``: on a serial port that is ``tcdrain``, which waits for the other
        end to take the bytes and can block an exit path for good. ``write`` hands the
        bytes to the kernel, which sends them after the process is gone. The lock is
        waited for only briefly: a stop must not hang behind a stuck thread.
        """
        frame = self.host.emergency_stop()
        port = self._serial
        if port is None:
            return
        locked = self._state.acquire(timeout=0.05)
        try:
            port.write(frame)
        except PORT_ERRORS:
            pass
        finally:
            if locked:
                self._state.release()

    # -- internals ------------------------------------------------------------------------

    def _require_port(self) -> None:
        if self._serial is None:
            raise StimulatorError(f"RehaStim 2 on {self.port_name} is not connected")

    def _bytes_waiting(self) -> bool:
        """Bytes in the port's input buffer that the reader thread has not taken yet (a
        loaded machine can leave it unscheduled for longer than a deadline): asked of the
        kernel without reading, so the reader keeps the stream in order."""
        port = self._serial
        if port is None:
            return False
        try:
            return port.in_waiting > 0
        except PORT_ERRORS:
            return False  # the reader reports the lost port

    def _flush(self) -> None:
        """Write what the host queued (the caller holds the lock)."""
        data = self.host.data_to_send()
        if not data or self._serial is None:
            return
        try:
            self._serial.write(data)
        except PORT_ERRORS as exc:
            raise StimulatorError(f"writing to {self.port_name} failed: {exc}") from exc

    def _wait(self, pending: PendingAck) -> None:
        """Block until ``pending`` is answered (or its deadline); raise unless it was OK."""
        with self._state:
            self._state.wait_for(
                lambda: pending.result is not None or self.host.has_error,
                timeout=max(0.0, pending.deadline_s - self._clock()))
            self.host.check(self._clock())
            self.host.outcome(pending)

    def _on_read(self, data: bytes) -> None:
        with self._state:
            now_s = self._clock()
            if data:
                self.host.receive_data(data, now_s)
            self.host.keep_alive(now_s)
            try:
                self._flush()
            except StimulatorError as exc:
                self.host.fail(exc)
            self._state.notify_all()

    def _on_lost(self, exc: Exception) -> None:
        with self._state:
            self.host.fail(StimulatorError(f"lost the RehaStim 2 on {self.port_name}: {exc}"))
            self._state.notify_all()
