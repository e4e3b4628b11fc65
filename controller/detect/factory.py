"""Pick the detector a protocol's trigger asks for."""

from __future__ import annotations

from controller.detect.base import GaitDetector
from controller.detect.cadence import CadenceTrigger
from controller.detect.calibration import GaitCalibration
from controller.detect.gait import GyroGaitDetector
from controller.detect.tilt import TiltTrigger
from protocols.schema import CadenceTrigger as CadenceSettings
from protocols.schema import GyroTrigger
from protocols.schema import TiltTrigger as TiltSettings


def make_detector(trigger: GyroTrigger | TiltSettings | CadenceSettings,
                  calibration: GaitCalibration | None = None) -> GaitDetector:
    if isinstance(trigger, CadenceSettings):
        return CadenceTrigger(trigger.cadence_steps_per_min, trigger.swing_fraction)
    if isinstance(trigger, TiltSettings):
        return TiltTrigger(trigger.tilt_heel_off_deg, trigger.tilt_heel_strike_deg, calibration,
                           trigger.placement)
    return GyroGaitDetector(calibration, trigger.placement)
