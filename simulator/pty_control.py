"""Fault injection commands, the same words by flag (``--fault``) and at run time (stdin).

One command per line; the simulator answers each on stdout with one JSON line, ``{"ok":
"<command>"}`` or ``{"error": "<why>"}``, so a test can wait for a fault to be in force.

  stim silent              stop answering (and listening): a hung stimulator
  stim late SECONDS        hold every answer back this long
  stim refuse              answer every command with a transfer error
  stim error [KIND]        report a stimulation error (electrode, emergency, module) and
                           stop output, as the device does
  imu stall                stop sending samples
  imu freeze               keep sending the last sample's values
  imu rate HZ              stream at HZ samples a second from now on
  imu saturate             pin the x acceleration at full scale (a stuck sensor)
  imu swap FRACTION        swap two data bytes in this fraction of the packets (the sum
                           checksum still passes)
  DEVICE drop FRACTION     drop this fraction of the bytes sent (DEVICE: stim or imu)
  DEVICE corrupt FRACTION  break the checksum of this fraction of the packets
  DEVICE garbage BYTES     send a burst of random bytes before the next packet
  DEVICE vanish            close the port for good, as an unplugged adapter
  DEVICE ok                clear every fault of the device (not a vanished port)
  quit                     stop the simulator

``--fault "COMMAND@SECONDS"`` schedules a command that many seconds after start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.devices import sciencemode as sm
from simulator.pty_faults import LineFaults
from simulator.pty_imu import ImuStream
from simulator.pty_port import PtyPort
from simulator.pty_rehastim import RehaStimDevice

GARBAGE_MAX_BYTES = 1 << 20
LATE_MAX_S = 60.0
_ERROR_KINDS = {
    "electrode": sm.StimulationErrorCode.ELECTRODE_ERROR,
    "emergency": sm.StimulationErrorCode.EMERGENCY_SWITCH,
    "module": sm.StimulationErrorCode.STIMULATION_MODULE_ERROR,
}


class CommandError(ValueError):
    """A control command that does not parse; the simulator reports it and carries on."""


@dataclass
class Rig:
    """Everything a command can act on."""

    stimulator: RehaStimDevice
    stimulator_port: PtyPort
    imu: ImuStream
    imu_port: PtyPort


def split_schedule(text: str) -> tuple[str, float]:
    """``"imu stall@2.5"`` -> ``("imu stall", 2.5)``; no ``@`` means at once."""
    command, at, delay = text.partition("@")
    try:
        return command.strip(), float(delay) if at else 0.0
    except ValueError as exc:
        raise CommandError(f"bad delay in {text!r}") from exc


def apply(rig: Rig, text: str, now_s: float) -> bool:
    """Carry out one command; False when it was ``quit``."""
    words = text.split()
    if words == ["quit"]:
        return False
    if len(words) < 2 or words[0] not in ("stim", "imu"):
        raise CommandError(f"unknown command {text!r}")
    device, verb, args = words[0], words[1], words[2:]
    line = rig.stimulator.line if device == "stim" else rig.imu.line
    port = rig.stimulator_port if device == "stim" else rig.imu_port
    if _line_command(line, port, verb, args):
        return True
    if device == "stim":
        _stimulator_command(rig.stimulator, verb, args, now_s)
    else:
        _imu_command(rig.imu, verb, args, now_s)
    return True


def _number(args: list[str], largest: float = math.inf) -> float:
    """The one argument: a finite number in [0, ``largest``] (a NaN delay would hold
    every answer back for good, a huge garbage burst would fill the memory)."""
    if len(args) != 1:
        raise CommandError("expected one number")
    try:
        value = float(args[0])
    except ValueError as exc:
        raise CommandError(f"not a number: {args[0]!r}") from exc
    if not (math.isfinite(value) and 0.0 <= value <= largest):
        raise CommandError(f"{args[0]!r} is not a number in [0, {largest:g}]")
    return value


def _line_command(line: LineFaults, port: PtyPort, verb: str, args: list[str]) -> bool:
    if verb == "drop":
        line.drop_fraction = _number(args, 1.0)
    elif verb == "corrupt":
        line.corrupt_fraction = _number(args, 1.0)
    elif verb == "garbage":
        line.garbage_pending_bytes = int(_number(args, GARBAGE_MAX_BYTES))
    elif verb == "vanish":
        port.vanish()
    elif verb == "ok":
        line.clear()
        return False
    else:
        return False
    return True


def _stimulator_command(device: RehaStimDevice, verb: str, args: list[str],
                        now_s: float) -> None:
    if verb == "silent":
        device.silent = True
    elif verb == "late":
        device.late_s = _number(args, LATE_MAX_S)
    elif verb == "refuse":
        device.refuse = True
    elif verb == "error":
        kind = args[0] if args else "electrode"
        if kind not in _ERROR_KINDS:
            raise CommandError(f"unknown stimulation error {kind!r}")
        device.stimulation_error(now_s, _ERROR_KINDS[kind])
    elif verb == "ok":
        device.silent = device.refuse = False
        device.late_s = 0.0
    else:
        raise CommandError(f"unknown stimulator fault {verb!r}")


def _imu_command(imu: ImuStream, verb: str, args: list[str], now_s: float) -> None:
    if verb == "stall":
        imu.stalled = True
    elif verb == "freeze":
        imu.frozen = True
    elif verb == "rate":
        rate_hz = _number(args)
        if not 0.0 < rate_hz <= 1000.0:
            raise CommandError(f"IMU rate {rate_hz:g} Hz outside (0, 1000]")
        imu.set_rate(rate_hz, now_s)
    elif verb == "saturate":
        imu.saturated = True
    elif verb == "swap":
        imu.swap_fraction = _number(args)
    elif verb == "ok":
        imu.stalled = imu.frozen = imu.saturated = False
        imu.swap_fraction = 0.0
    else:
        raise CommandError(f"unknown IMU fault {verb!r}")
