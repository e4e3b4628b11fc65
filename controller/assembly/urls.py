"""Pick a device by URL, so the same session runs on hardware, the simulator or a recording.

  serial:///dev/ttyUSB0?baud=460800   a RehaStim 2 / WitMotion IMU on a serial port
                                      (``fes-sim`` prints pseudo-terminal paths to use here)
  sim://                              the in-process twins (stimulator model, recorded walk)
  replay://path/to/walk_foot_imu.csv?foot=right   a recording, as a motion sensor

The in-process ``sim://`` and ``replay://`` sources run on the session's clock; serial
devices keep their own time (see the drivers).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from controller.clock import Clock
from controller.devices.base import MotionSensor, Stimulator
from controller.devices.recording import load_recording


class DeviceUrlError(ValueError):
    """A device URL we cannot open: the message names the URL and what would work."""


STIMULATOR_PARAMETERS: Mapping[str, tuple[str, ...]] = {"serial": ("baud",), "sim": ()}
"""Query parameters each stimulator URL scheme takes."""
MOTION_PARAMETERS: Mapping[str, tuple[str, ...]] = {
    "serial": ("baud",), "sim": ("foot",), "replay": ("foot",)}
"""Query parameters each motion sensor URL scheme takes."""


def _split(url: str, parameters: Mapping[str, tuple[str, ...]]
           ) -> tuple[str, str, dict[str, str]]:
    """Scheme, path and query of ``url``; a parameter the scheme does not take, or one
    given twice, is refused: ignored, a misspelt ``baud`` would silently run at the default."""
    parts = urlsplit(url)
    values = parse_qs(parts.query, keep_blank_values=True)
    accepted = parameters.get(parts.scheme)
    if accepted is not None:
        takes = f"takes {', '.join(accepted)}" if accepted else "takes no parameters"
        for key, given in values.items():
            if key not in accepted:
                raise DeviceUrlError(f"{url}: unknown parameter {key!r} "
                                     f"({parts.scheme}:// {takes})")
            if len(given) > 1:
                raise DeviceUrlError(f"{url}: parameter {key!r} given {len(given)} times")
    query = {key: given[0] for key, given in values.items()}
    return parts.scheme, parts.netloc + parts.path, query


def _baud(url: str, query: dict[str, str], default: int) -> int:
    try:
        return int(query.get("baud", default))
    except ValueError:
        raise DeviceUrlError(f"{url}: baud must be a whole number") from None


def open_stimulator(url: str, clock: Clock) -> Stimulator:
    scheme, path, query = _split(url, STIMULATOR_PARAMETERS)
    if scheme == "serial":
        from controller.devices.rehastim2 import DEFAULT_BAUD, RehaStim2

        return RehaStim2(path, baud=_baud(url, query, DEFAULT_BAUD))
    if scheme == "sim":
        from simulator.inmemory import InMemoryStimulator

        return InMemoryStimulator(clock.now)
    raise DeviceUrlError(f"{url}: a stimulator URL is serial://PORT[?baud=N] or sim://")


def open_motion_sensor(url: str, clock: Clock) -> MotionSensor:
    scheme, path, query = _split(url, MOTION_PARAMETERS)
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
