"""Building prepared sessions, shared by the command line, the GUI, tests and scripts.

``build_session`` wires a session from a protocol and open devices;
``build_simulated_session`` runs it on the in-process simulator; ``build_device_session``
on devices named by URL (serial ports, ``sim://``, ``replay://``).
"""

from controller.assembly.build import build_session
from controller.assembly.hardware import DeviceOpenError, DeviceSession, build_device_session
from controller.assembly.simulated import SimulatedRig, build_simulated_session, simulate_walk

__all__ = ["DeviceOpenError", "DeviceSession", "SimulatedRig", "build_device_session",
           "build_session", "build_simulated_session", "simulate_walk"]
