"""The WitMotion IMU's side: a walk streamed as 0x51/0x52/0x53 packets at the sensor's rate.

The walk (a recording, resampled to the output rate) loops for as long as the simulator
runs. Sample k is due at ``start + k / rate``; :meth:`ImuStream.due` returns the bytes of
every sample due by ``now``, so a late wake-up sends a short burst, as a USB adapter does.
The host may change the rate with the sensor's own RATE command.

Faults: ``stalled`` sends nothing (time moves on), ``frozen`` repeats the last values,
``saturated`` pins the x acceleration at the end of its range (the int16 code a stuck
sensor reads), ``swap_fraction`` of the packets have two data bytes swapped (a fault the
sum checksum cannot see), and :attr:`line` damages the bytes on the wire.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from controller.devices import witmotion as wm
from controller.devices.recording import load_recording
from controller.types import GRAVITY_MPS2, Sample, Vector3
from simulator.pty_faults import LineFaults

TEMPERATURE_C = 31.5


def resample(samples: Sequence[Sample], rate_hz: float) -> list[Sample]:
    """Linear interpolation onto a uniform grid starting at 0 s."""
    t = np.array([s.t_s for s in samples])
    t = t - t[0]
    grid = np.arange(0.0, t[-1], 1.0 / rate_hz)
    acc = np.array([s.acc_mps2 for s in samples])
    gyro = np.array([s.gyro_dps for s in samples])
    columns = [np.interp(grid, t, data[:, axis]) for data in (acc, gyro) for axis in range(3)]
    return [Sample(float(time_s), (a0, a1, a2), (g0, g1, g2))
            for time_s, a0, a1, a2, g0, g1, g2 in zip(
                grid.tolist(), *(column.tolist() for column in columns), strict=True)]


def load_walk(path: Path, foot: str, rate_hz: float) -> list[Sample]:
    return resample(load_recording(path, foot).samples(), rate_hz)


def tilt_deg(acc_mps2: Vector3) -> Vector3:
    """Roll and pitch from gravity, as the sensor's fusion reports them when still."""
    ax, ay, az = acc_mps2
    return (math.degrees(math.atan2(ay, az)),
            math.degrees(math.atan2(-ax, math.hypot(ay, az))), 0.0)


def packets(sample: Sample) -> bytes:
    acc_g = (sample.acc_mps2[0] / GRAVITY_MPS2, sample.acc_mps2[1] /
             GRAVITY_MPS2, sample.acc_mps2[2] / GRAVITY_MPS2)
    angle = sample.angle_deg if sample.angle_deg is not None else tilt_deg(sample.acc_mps2)
    return (wm.encode(wm.Acceleration(acc_g, TEMPERATURE_C))
            + wm.encode(wm.AngularVelocity(sample.gyro_dps, TEMPERATURE_C))
            + wm.encode(wm.Angle(angle, 0x3031)))


class ImuStream:
    def __init__(self, walk: Sequence[Sample], rate_hz: float, start_s: float,
                 on_sample: Callable[[float, int], None] | None = None) -> None:
        self.walk = walk
        self.rate_hz = rate_hz
        self.on_sample = on_sample
        """Called with (time written, sample number) for every sample sent."""
        self.line = LineFaults(checksum_index=wm.PACKET_BYTES - 1)
        self.config = wm.ConfigDecoder()
        self.stalled = False
        self.frozen = False
        self.saturated = False
        self.swap_fraction = 0.0
        self.swapped = 0
        """Packets sent with two data bytes swapped."""
        self._rng = random.Random(7)
        self.sent = 0
        self._origin_s = start_s
        self._index = 0
        self._last: Sample = walk[0]

    def next_due_s(self) -> float:
        return self._origin_s + self._index / self.rate_hz

    def due(self, now_s: float) -> bytes:
        out = bytearray()
        while self.next_due_s() <= now_s:
            sample = self.walk[self._index % len(self.walk)]
            self._index += 1
            if self.stalled:
                continue
            if not self.frozen:
                self._last = sample
            sent = self._last
            if self.saturated:
                sent = Sample(sent.t_s, (2 * wm.ACC_FULL_SCALE_G * GRAVITY_MPS2,
                                         *sent.acc_mps2[1:]), sent.gyro_dps, sent.angle_deg)
            for frame in (packets(sent)[i:i + wm.PACKET_BYTES]
                          for i in range(0, 3 * wm.PACKET_BYTES, wm.PACKET_BYTES)):
                out += self.line.apply(self._swap(frame))
            self.sent += 1
            if self.on_sample is not None:
                self.on_sample(now_s, self._index - 1)
        return bytes(out)

    def _swap(self, frame: bytes) -> bytes:
        """Two different data bytes of ``frame`` swapped, ``swap_fraction`` of the time."""
        if not (self.swap_fraction and self._rng.random() < self.swap_fraction):
            return frame
        data = bytearray(frame)
        candidates = [(i, j) for i in range(2, 10) for j in range(i + 1, 10)
                      if data[i] != data[j]]
        if not candidates:
            return frame
        i, j = self._rng.choice(candidates)
        data[i], data[j] = data[j], data[i]
        self.swapped += 1
        return bytes(data)

    def receive(self, data: bytes, now_s: float) -> None:
        """The host's configuration commands; only RATE changes what we stream."""
        for command in self.config.feed(data):
            rate = wm.RATE_CODES_HZ.get(command.value) \
                if command.register == wm.Register.RATE else None
            if rate is not None:
                self.set_rate(rate, now_s)

    def set_rate(self, rate_hz: float, now_s: float) -> None:
        """Stream at ``rate_hz`` from ``now_s`` on (the sensor's RATE register)."""
        self._origin_s = now_s - self._index / rate_hz
        self.rate_hz = rate_hz
