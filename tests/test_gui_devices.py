"""The device panel against ``fes-sim`` on pseudo-terminals, offscreen with pytest-qt:
the probe names what answered, a factory-rate IMU is flagged and set to 100 Hz, and a
port that does not exist gets a message, not a traceback."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from gui.device_panel import DevicePanel
from tests.sim_process import running_simulator
from tests.test_end_to_end import SIM_ARGS

PROBE_MS = 15_000
FACTORY_ARGS = tuple("10" if previous == "--imu-rate" else arg
                     for previous, arg in zip(("", *SIM_ARGS[:-1]), SIM_ARGS, strict=True))
"""The test walk, streamed at the 10 Hz a WitMotion unit leaves the factory with."""


def panel_on(qtbot: QtBot, stimulator: str, imu: str) -> DevicePanel:
    panel = DevicePanel()
    qtbot.addWidget(panel)
    assert panel.device_urls() == (None, None), "the simulator is the default"
    panel.serial.setChecked(True)
    panel.stimulator_port.setEditText(stimulator)
    panel.imu_port.setEditText(imu)
    return panel


def test_probe_names_both_devices_and_a_slow_imu_is_set_to_100_hz(
        qtbot: QtBot, tmp_path: Path) -> None:
    with running_simulator(tmp_path, *FACTORY_ARGS) as sim:
        panel = panel_on(qtbot, sim.stimulator, sim.imu)
        assert panel.device_urls() == (f"serial://{sim.stimulator}", f"serial://{sim.imu}")
        qtbot.mouseClick(panel.probe_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not panel.busy, timeout=PROBE_MS)
        report = panel.report.text()
        assert "a RehaStim 2 answered" in report and "a WitMotion IMU answered" in report
        assert panel.imu_stream is not None and 8 <= panel.imu_stream.rate_hz <= 12
        assert "too slow" in report and panel.fix_button.isVisibleTo(panel)
        qtbot.mouseClick(panel.fix_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not panel.busy, timeout=PROBE_MS)
        assert panel.imu_stream is not None and 95 <= panel.imu_stream.rate_hz <= 105
        assert "enough" in panel.report.text()
        assert not panel.fix_button.isVisibleTo(panel)


def test_a_port_that_does_not_exist_is_reported_plainly(qtbot: QtBot) -> None:
    panel = panel_on(qtbot, "/dev/no-such-stimulator", "/dev/no-such-imu")
    qtbot.mouseClick(panel.probe_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy, timeout=PROBE_MS)
    assert "nothing recognised (cannot open" in panel.report.text()
    assert "/dev/no-such-imu" in panel.report.text()
    assert panel.imu_stream is None and not panel.fix_button.isVisibleTo(panel)
