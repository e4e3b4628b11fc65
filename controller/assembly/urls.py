"""Pick a device by URL, so the same session runs on hardware, the simulator or a recording.

  serial:///dev/ttyUSB0?baud=460800   a RehaStim 2 / WitMotion IMU on a serial port
                                      (``fes-sim`` prints pseudo-terminal paths to use here)
  sim://                              the in-process twins (stimulator model, recorded walk)
  replay://path/to/walk_foot_imu.csv?foot=right   a recording, as a motion sensor

The in-process ``sim://`` and ``replay://`` sources run on the session's clock; serial
devices keep their own time (see the drivers).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from controller.clock import Clock
from controller.devices.base import MotionSensor, Stimulator
from controller.devices.recording import load_recording


class DeviceUrlError(ValueError):
    """A device URL we cannot open: the message names the URL and what would work."""


def _split(url: str) -> tuple[str, str, dict[str, str]]:
    parts = urlsplit(url)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return parts.scheme, parts.netloc + parts.path, query


def _baud(url: str, query: dict[str, str], default: int) -> int:
    try:
        return int(query.get("baud", default))
    except ValueError:
        raise DeviceUrlError(f"{url}: baud must be a whole number") from None


def open_stimulator(url: str, clock: Clock) -> Stimulator:
    scheme, path, query = _split(url)
    if scheme == "serial":
        from controller.devices.rehastim2 import DEFAULT_BAUD, RehaStim2

        return RehaStim2(path, baud=_baud(url, query, DEFAULT_BAUD))
    if scheme == "sim":
        from simulator.inmemory import InMemoryStimulator

        return InMemoryStimulator(clock.now)
    raise DeviceUrlError(f"{url}: a stimulator URL is serial://PORT[?baud=N] or sim://")


def open_motion_sensor(url: str, clock: Clock) -> MotionSensor:
    scheme, path, query = _split(url)
    if scheme == "serial":
        from controller.devices.witmotion_imu import DEFAULT_BAUD, WitMotionImu

        return WitMotionImu(path, baud=_baud(url, query, DEFAULT_BAUD))
    if scheme in ("sim", "replay"):
        from simulator import BUNDLED_WALK
        from simulator.motion import SimulatedMotion

        walk = Path(path) if scheme == "replay" else BUNDLED_WALK
        return SimulatedMotion(load_recording(walk, query.get("foot", "left")).samples(), clock)
    raise DeviceUrlError(
        f"{url}: a motion sensor URL is serial://PORT[?baud=N], sim:// or replay://FILE")
