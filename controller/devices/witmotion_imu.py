"""A WitMotion serial IMU (WT901 / BWT901 family) as a :class:`MotionSensor`.

A reader thread (:class:`~controller.devices.serial_port.PortReader`) owns the port: it decodes packets with :mod:`controller.devices.witmotion`,
groups acceleration (0x51), angular velocity (0x52) and, when the sensor sends it, angle
(0x53) into one :class:`Sample`, and queues the samples for :meth:`WitMotionImu.read`.
It also signals their arrival, so a control loop can wait in
:meth:`WitMotionImu.wait_for_samples` and start its tick the moment a sample is there
instead of finding it up to a tick later (see :class:`controller.clock.MonotonicClock`).

Timestamps. The sensor's packets carry no sample counter (its 0x50 time packet is a
real-time clock with millisecond steps, set by hand, and off by default), so the only clock
shared with the rest of the controller is the controller's own: each sample is stamped with
the monotonic time at which the read that completed it returned. When one read completes
several samples (the OS delivered them together), the earlier ones are back-dated by the
nominal sample period so the stream keeps its spacing; stamps never go backwards. The
session turns these into session time by subtracting its start.

Damage the checksum cannot see. The sum checksum is blind to bytes swapped inside a
packet. Each packet's fourth field moves slowly (chip temperature in 0.01 °C, or the
firmware version of an angle packet), so a packet whose fourth field leaps from the last
believed one is rejected with its sample and counted (:attr:`SampleAssembler.rejected_packets`).
A swap inside the gyro packet leaves the acceleration packet alone, while a real limb
never turns faster from one sample to the next without the accelerometer moving too: a
sample whose gyro leaps while its acceleration holds still is rejected and counted
(:attr:`SampleAssembler.rejected_samples`). Values that leap beyond any limb are the sensor
watch's to judge (:mod:`controller.sensor_watch`).

Trouble is raised from :meth:`read` as :class:`SensorError`, and stays raised: a port that
vanished, or more than ``max_garbage_run_bytes`` of undecodable bytes in a row. A line
that damages packets where the checksum cannot see it is raised while it lasts: when more
than :data:`DAMAGED_SHARE_MAX` of a window's samples are caught damaged, the ones that
pass cannot be trusted either (their samples are dropped, not delivered). Silence and
frozen values are not the driver's call; the supervisor judges those from the samples.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import serial

from controller.devices import witmotion as wm
from controller.devices.base import SensorError
from controller.devices.serial_port import PORT_ERRORS, PortReader, SerialPort, open_port
from controller.types import GRAVITY_MPS2, Sample, Vector3

DEFAULT_BAUD = 115200
DEFAULT_RATE_HZ = 100.0
MAX_GARBAGE_RUN_BYTES = 10 * wm.PACKET_BYTES
"""Ten packets' worth of bytes without one good packet: the line is not going to recover."""
MAX_QUEUED_SAMPLES = 10_000
READ_POLL_S = 0.02
RATE_POLL_S = 0.05
TEMPERATURE_STEP_MAX = 50
"""Largest believed change of the chip temperature (0.01 °C codes) from the last packet of
its type: 0.5 °C in one sample, where the chip warms by hundredths of a degree a second.
The firmware version of an angle packet may not change at all."""
SLOW_FIELD_REBASE = 3
"""This many packets in a row that disagree with the last believed one are believed: the
field really moved (or the first packet heard was the damaged one)."""
GYRO_STEP_ALONE_MAX_DPS = 100.0
"""Largest gyro change between consecutive samples believed whatever the acceleration does."""
ACC_STEP_PER_GYRO_STEP_G = 0.0002
"""A larger gyro change needs an acceleration change (largest axis) of at least this many g
per °/s of it. In the shared recordings (foot walks at 102 and 205 Hz, knee exercises at
25 Hz, each also resampled to 50, 100 and 200 Hz) every gyro change above 100 °/s came
with at least 0.0004 g per °/s (0.08 g with 204 °/s), twice this."""


Group = tuple[Vector3, Vector3, Vector3 | None]
"""One sample's acceleration (g), angular velocity (°/s) and angles (° or None)."""


DAMAGE_WINDOW_SAMPLES = 100
"""Samples (kept or caught damaged) over which the share of damaged ones is judged."""
DAMAGED_SHARE_MAX = 0.1
"""More than this share of a window caught damaged (by the slow-field or gyro/accelerometer
checks, which the checksum cannot do) is a line that lies: the shared recordings show none
at all, fes-sim's ``imu swap 0.3`` about 45 %."""


class SampleAssembler:
    """Turns the packet stream into samples: one per acc + gyro (+ angle) group.

    Whether the sensor sends angles is learnt from the stream: a group closes on its angle
    packet, or on its gyro packet once the stream has shown that no angle follows.

    Packets are paired only when no bytes were dropped between them: with packets lost in
    between, one sample's acceleration would be paired with the next one's gyro.
    """

    def __init__(self) -> None:
        self._acc_g: Vector3 | None = None
        self._gyro_dps: Vector3 | None = None
        self._angles_expected = True
        self._slow: dict[type, int] = {}
        self._slow_disagree: dict[type, int] = {}
        self.rejected_packets = 0
        """Packets (with their sample) dropped for a fourth field that leapt."""
        self._believed_acc_g: Vector3 | None = None
        self._believed_gyro_dps: Vector3 | None = None
        self._implausible_run = 0
        self.rejected_samples = 0
        """Samples dropped for a gyro that leapt while the acceleration held still."""

    def take(self, decoder: wm.Decoder, data: bytes) -> list[Group]:
        """Decode ``data`` a packet's length at a time (so each packet is known to follow
        dropped bytes or not) and return the groups it completes."""
        groups = []
        for start in range(0, len(data), wm.PACKET_BYTES):
            dropped_bytes, run_bytes = decoder.garbage_bytes, decoder.garbage_run_bytes
            packets = decoder.feed(data[start:start + wm.PACKET_BYTES])
            if not packets:
                continue
            # bytes dropped after the packet in this piece are the run since it
            gap = run_bytes > 0 or \
                decoder.garbage_bytes - dropped_bytes > decoder.garbage_run_bytes
            groups += [group for packet in packets if (group := self.add(packet, gap))]
        return groups

    def add(self, packet: wm.DataPacket, after_gap: bool = False) -> Group | None:
        """The completed group's (acc g, gyro deg/s, angle deg or None), if this closed one;
        ``after_gap``: bytes were dropped just before ``packet``."""
        if not self._believed(packet):
            self.rejected_packets += 1
            self._acc_g = self._gyro_dps = None  # the sample it belongs to is lost
            return None
        done = self._group(packet, after_gap)
        if after_gap:  # samples may have been lost: the next is not compared across them
            self._believed_acc_g = self._believed_gyro_dps = None
        return done

    def _group(self, packet: wm.DataPacket, after_gap: bool) -> Group | None:
        match packet:
            case wm.Acceleration(acc_g):
                done = self._close(None) if self._gyro_dps is not None else None
                if done is not None and not after_gap:
                    self._angles_expected = False  # no angle came; none was lost either
                self._acc_g = acc_g
                return done
            case wm.AngularVelocity(gyro_dps):
                # after a gap, this gyro's acceleration was lost: a whole pair before the
                # gap closes without its angle
                done = self._close(None) if after_gap else None
                self._gyro_dps = gyro_dps
                return done if self._angles_expected else done or self._close(None)
            case wm.Angle(angle_deg):
                if after_gap:  # the angle of the pair before the gap may have been lost
                    return self._close(None)
                self._angles_expected = True
                return self._close(angle_deg)
        return None

    def _believed(self, packet: wm.DataPacket) -> bool:
        """Whether the packet's slow fourth field follows on from its type's last one."""
        match packet:
            case wm.Angle(_, version):
                code, step_max = version, 0
            case wm.Acceleration(_, temperature_c) | wm.AngularVelocity(_, temperature_c):
                code = round(temperature_c * wm.TEMPERATURE_SCALE_C)
                step_max = TEMPERATURE_STEP_MAX
        kind = type(packet)
        last = self._slow.get(kind)
        if last is None or abs(code - last) <= step_max:
            self._slow[kind], self._slow_disagree[kind] = code, 0
            return True
        disagree = self._slow_disagree.get(kind, 0) + 1
        if disagree >= SLOW_FIELD_REBASE:
            self._slow[kind], self._slow_disagree[kind] = code, 0
            return True
        self._slow_disagree[kind] = disagree
        return False

    def _close(self, angle_deg: Vector3 | None) -> Group | None:
        acc, gyro = self._acc_g, self._gyro_dps
        self._acc_g = self._gyro_dps = None
        if acc is None or gyro is None or not self._consistent(acc, gyro):
            return None
        return acc, gyro, angle_deg

    def _consistent(self, acc_g: Vector3, gyro_dps: Vector3) -> bool:
        """Whether the gyro's change from the last believed sample (when no sample was lost
        since) is matched by the accelerometer's; a run of disagreeing samples is believed
        (the reference is stale)."""
        last_acc, last_gyro = self._believed_acc_g, self._believed_gyro_dps
        if last_acc is not None and last_gyro is not None \
                and self._implausible_run < SLOW_FIELD_REBASE - 1:
            gyro_step_dps = _largest_step(gyro_dps, last_gyro)
            if gyro_step_dps > GYRO_STEP_ALONE_MAX_DPS and _largest_step(
                    acc_g, last_acc) < ACC_STEP_PER_GYRO_STEP_G * gyro_step_dps:
                self._implausible_run += 1
                self.rejected_samples += 1
                return False
        self._believed_acc_g, self._believed_gyro_dps = acc_g, gyro_dps
        self._implausible_run = 0
        return True


def _largest_step(now: Vector3, before: Vector3) -> float:
    """The largest change of one axis between two readings."""
    return max(abs(now[0] - before[0]), abs(now[1] - before[1]), abs(now[2] - before[2]))


class WitMotionImu:
    """Streams :class:`Sample`s from a WitMotion IMU on ``port`` (a path or a pyserial URL)."""

    def __init__(
        self,
        port: str,
        *,
        baud: int = DEFAULT_BAUD,
        rate_hz: float = DEFAULT_RATE_HZ,
        max_garbage_run_bytes: int = MAX_GARBAGE_RUN_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.port_name = port
        self.period_s = 1.0 / rate_hz
        self.max_garbage_run_bytes = max_garbage_run_bytes
        self.decoder = wm.Decoder()
        self._clock = clock
        self.assembler = SampleAssembler()
        self._samples: deque[Sample] = deque()
        self._lock = threading.Lock()
        self._waiting = threading.Event()
        """Set while samples, or a new error, wait for :meth:`read`; set and cleared with
        the queue under ``_lock``, so a sample queued after a read always sets it again."""
        self._error: SensorError | None = None
        self._last_t_s = float("-inf")
        self._first_t_s: float | None = None
        self.received_samples = 0
        """Samples heard since the port was opened (read or not)."""
        self._damage: SensorError | None = None
        """Raised by :meth:`read` while the line damages packets unseen by the checksum."""
        self._window_samples = self._window_damaged = self._damaged_before = 0
        try:
            self._serial: SerialPort | None = open_port(port, baud, serial.PARITY_NONE,
                                                        READ_POLL_S)
            self._serial.reset_input_buffer()  # bytes from before we listened have no time
        except PORT_ERRORS as exc:
            raise SensorError(f"cannot open {port}: {exc}") from exc
        self._reader = PortReader(self._serial, "witmotion-reader", self._on_read,
                                  self._on_lost)
        self._reader.start()

    def read(self) -> list[Sample]:
        with self._lock:
            self._waiting.clear()  # an error stays raised, but wakes a waiting loop once
            if self._error is not None:
                # a fresh traceback each time: re-raising one instance chains every earlier
                # raise onto it, and a session raising it every tick grew ~4 MB a minute
                raise self._error.with_traceback(None)
            if self._damage is not None:
                self._samples.clear()
                raise self._damage.with_traceback(None)
            samples = list(self._samples)
            self._samples.clear()
        return samples

    def wait_for_samples(self, timeout_s: float) -> bool:
        """Block until :meth:`read` has something to return (samples, or the error it
        will raise), at most ``timeout_s``; True if it has.

        Returns at once if samples arrived since the last read, even before this call:
        the signal is cleared only by :meth:`read`, together with the queue, so no
        arrival between a read and the next wait is lost.
        """
        return self._waiting.wait(timeout_s)

    def measured_rate_hz(self, span_s: float, timeout_s: float, *,
                         counting_damaged: bool = False) -> float:
        """Samples a second heard since the port was opened, once they span ``span_s``
        (waiting at most ``timeout_s``; 0.0 if fewer than two came), so a stream too slow
        for a session is refused before the session starts, not two seconds into it.

        ``counting_damaged``: the rate the sensor sends, as far as the line shows: each
        packet's worth of bytes that did not decode counts as one more sample (a damaged
        packet loses at most its own sample), so damage is not taken for a slow sensor.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                count, first_s, last_s = self.received_samples, self._first_t_s, self._last_t_s
                if counting_damaged:
                    count += self.decoder.garbage_bytes // wm.PACKET_BYTES
            if (first_s is not None and last_s - first_s >= span_s) \
                    or time.monotonic() >= deadline:
                break
            time.sleep(RATE_POLL_S)
        if first_s is None or count < 2 or last_s <= first_s:
            return 0.0
        return (count - 1) / (last_s - first_s)

    def close(self) -> None:
        port, self._serial = self._serial, None
        if port is None:
            return
        self._reader.stop(join_s=0.0)
        try:
            port.close()
        finally:
            self._reader.stop()

    def _on_read(self, data: bytes) -> None:
        arrived_s = self._clock()
        if data:
            self._take(data, arrived_s)

    def _on_lost(self, exc: Exception) -> None:
        self._fail(SensorError(f"lost the IMU on {self.port_name}: {exc}"))

    def _take(self, data: bytes, arrived_s: float) -> None:
        groups = self.assembler.take(self.decoder, data)
        self._judge_damage(len(groups))
        if self.decoder.longest_garbage_run_bytes > self.max_garbage_run_bytes:
            self._fail(SensorError(
                f"{self.decoder.longest_garbage_run_bytes} bytes from the IMU on "
                f"{self.port_name} in a row were not valid packets"))
            return
        samples = []
        for back, (acc_g, gyro_dps, angle_deg) in zip(
                range(len(groups) - 1, -1, -1), groups, strict=True):
            t_s = max(arrived_s - back * self.period_s, self._last_t_s + 1e-6)
            self._last_t_s = t_s
            acc = (acc_g[0] * GRAVITY_MPS2, acc_g[1] * GRAVITY_MPS2,
                   acc_g[2] * GRAVITY_MPS2)
            samples.append(Sample(t_s, acc, gyro_dps, angle_deg))
        with self._lock:
            if len(self._samples) + len(samples) > MAX_QUEUED_SAMPLES:
                error = SensorError(f"the control loop fell {MAX_QUEUED_SAMPLES} samples "
                                    f"behind the IMU on {self.port_name}")
                self._error = self._error or error
                self._waiting.set()
                return
            self._samples.extend(samples)
            if samples:
                self.received_samples += len(samples)
                if self._first_t_s is None:
                    self._first_t_s = samples[0].t_s
                self._waiting.set()

    def _judge_damage(self, kept: int) -> None:
        """Count kept and damaged samples; at each full window, raise or clear the damage."""
        damaged_total = self.assembler.rejected_packets + self.assembler.rejected_samples
        damaged, self._damaged_before = damaged_total - self._damaged_before, damaged_total
        self._window_samples += kept + damaged
        self._window_damaged += damaged
        if self._window_samples < DAMAGE_WINDOW_SAMPLES:
            return
        share = self._window_damaged / self._window_samples
        damage = SensorError(
            f"{self._window_damaged} of the last {self._window_samples} samples from the IMU "
            f"on {self.port_name} were damaged where its checksum cannot see (swapped bytes): "
            "the ones that pass cannot be trusted") if share > DAMAGED_SHARE_MAX else None
        with self._lock:
            self._damage = damage
            if damage is not None:
                self._waiting.set()
        self._window_samples = self._window_damaged = 0

    def _fail(self, error: SensorError) -> None:
        with self._lock:
            if self._error is None:
                self._error = error
                self._waiting.set()
