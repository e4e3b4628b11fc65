"""Line faults a simulated device can put on its output: what a flaky cable or a noisy
USB adapter does to a byte stream. The device hands over whole frames; the faults decide
what of them reaches the wire."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class LineFaults:
    checksum_index: int
    """Where the frame's checksum byte sits: that is the byte a corruption hits, so the
    frame keeps its shape and only its checksum is wrong."""
    drop_fraction: float = 0.0
    corrupt_fraction: float = 0.0
    garbage_pending_bytes: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(5))

    def clear(self) -> None:
        self.drop_fraction = self.corrupt_fraction = 0.0
        self.garbage_pending_bytes = 0

    def apply(self, frame: bytes) -> bytes:
        out = bytearray()
        if self.garbage_pending_bytes:
            out += self.rng.randbytes(self.garbage_pending_bytes)
            self.garbage_pending_bytes = 0
        data = bytearray(frame)
        if self.corrupt_fraction and self.rng.random() < self.corrupt_fraction:
            data[self.checksum_index] ^= 0xA5
        if self.drop_fraction:
            data = bytearray(b for b in data if self.rng.random() >= self.drop_fraction)
        return bytes(out + data)
