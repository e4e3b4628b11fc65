"""Device drivers behind two small interfaces: :class:`Stimulator` and :class:`MotionSensor`."""

from controller.devices.base import (
    ChannelSetup,
    DeviceError,
    MotionSensor,
    SensorError,
    Stimulator,
    StimulatorError,
)

__all__ = [
    "ChannelSetup",
    "DeviceError",
    "MotionSensor",
    "SensorError",
    "Stimulator",
    "StimulatorError",
]
