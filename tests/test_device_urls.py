"""Device URLs: a query parameter the scheme does not take is an error, never ignored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from controller.assembly.urls import DeviceUrlError, open_motion_sensor, open_stimulator
from controller.clock import Clock, VirtualClock
from simulator import BUNDLED_WALK
from simulator.motion import SimulatedMotion
from tests.test_cli import fes
from tests.test_cli_hostile import refused


@pytest.mark.parametrize(("open_device", "url", "named", "accepted"), [
    (open_stimulator, "sim://?x=1", "'x'", "takes no parameters"),
    (open_stimulator, "sim://?x", "'x'", "takes no parameters"),
    (open_stimulator, "serial:///dev/ttyUSB0?foo=2", "'foo'", "takes baud"),
    (open_stimulator, "serial:///dev/ttyUSB0?baud=460800&baud=115200", "'baud'",
     "given 2 times"),
    (open_motion_sensor, "sim://?feet=right", "'feet'", "takes foot"),
    (open_motion_sensor, f"replay://{BUNDLED_WALK}?foot=right&rate=50", "'rate'",
     "takes foot"),
    (open_motion_sensor, "serial:///dev/ttyUSB0?baud=9600&parity=N", "'parity'",
     "takes baud"),
])
def test_a_url_with_a_parameter_its_scheme_does_not_take_is_refused(
        open_device: Callable[[str, Clock], object], url: str, named: str,
        accepted: str) -> None:
    with pytest.raises(DeviceUrlError) as refusal:
        open_device(url, VirtualClock(0.01))
    assert named in str(refusal.value) and accepted in str(refusal.value)


def test_the_parameters_a_scheme_takes_still_work() -> None:
    sensor = open_motion_sensor(f"replay://{BUNDLED_WALK}?foot=right", VirtualClock(0.01))
    assert isinstance(sensor, SimulatedMotion)
    sensor.close()


@pytest.mark.parametrize(("args", "named"), [
    (["run", "--stimulator", "sim://?x=1", "--imu", "sim://"], "'x'"),
    (["run", "--stimulator", "serial:///dev/ttyUSB0?foo=2", "--imu", "sim://"], "'foo'"),
    (["run", "--stimulator", "sim://", "--imu", "sim://?feet=right"], "'feet'"),
    (["calibrate", "--imu", "serial:///dev/ttyUSB0?bauds=9600", "--out", "{tmp}/new.toml"],
     "'bauds'"),
], ids=["run sim", "run serial", "run imu", "calibrate"])
def test_the_command_line_names_the_unknown_parameter_and_exits_2(
        args: list[str], named: str, tmp_path: Path) -> None:
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    if argv[0] == "run":
        argv += ["--db", str(tmp_path / "record.sqlite"), "--duration", "1"]
    result = fes(*argv, timeout_s=90)
    refused(result)
    assert result.stderr.count("error:") == 1, result.stderr
    assert named in result.stderr and "unknown parameter" in result.stderr, result.stderr
    assert not (tmp_path / "new.toml").exists()
