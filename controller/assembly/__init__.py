"""Building prepared sessions, shared by the command line, the GUI, tests and scripts.

``build_session`` wires a session from a protocol and open devices;
``build_simulated_session`` runs it on the in-process simulator; ``build_device_session``
on devices named by URL (serial ports, ``sim://``, ``replay://``).

The hardware path (serial drivers, URLs) is imported on first use of one of its names, so
a simulation does not pay for it at start-up.
"""

from typing import TYPE_CHECKING, Any

from controller.assembly.build import build_session
from controller.assembly.simulated import SimulatedRig, build_simulated_session, simulate_walk

if TYPE_CHECKING:
    from controller.assembly.hardware import (
        DeviceOpenError,
        DeviceSession,
        build_device_session,
    )

_HARDWARE = ("DeviceOpenError", "DeviceSession", "build_device_session")


def __getattr__(name: str) -> Any:
    if name in _HARDWARE:
        from controller.assembly import hardware

        return getattr(hardware, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DeviceOpenError", "DeviceSession", "SimulatedRig", "build_device_session",
           "build_session", "build_simulated_session", "simulate_walk"]
