"""What `fes simulate` loads before its first line: the start-up budget (0.3 s) holds only
while the hardware path, rich and the other mode's validator stay out of it.

Each check runs in a fresh interpreter (a test process has long since imported
everything); the figures themselves come from benchmarks/startup.py, not from here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "protocols" / "library"

_AT_FIRST_LINE = """
import json, sys
from controller.cli import main
from protocols import ExerciseProtocol, GaitProtocol

class FirstLine:
    '''Standard output without a descriptor: notes what is loaded when the first line
    is written, and keeps the rest.'''
    def __init__(self):
        self.seen = None
        self.encoding = "utf-8"
    def write(self, text):
        if self.seen is None and text.strip():
            self.seen = {"line": text.strip(), "modules": sorted(sys.modules),
                         "gait_built": GaitProtocol.__pydantic_complete__,
                         "exercise_built": ExerciseProtocol.__pydantic_complete__}
        return len(text)
    def flush(self):
        pass
    def isatty(self):
        return False

out = FirstLine()
sys.stdout = out
code = main(sys.argv[1:])
sys.stdout = sys.__stdout__
print(json.dumps({"code": code, **(out.seen or {})}))
"""


def at_first_line(*args: str) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-c", _AT_FIRST_LINE, *args], cwd=ROOT,
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    seen: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    assert seen["code"] == 0, seen
    return seen


def loaded(seen: dict[str, object], package: str) -> list[str]:
    modules = seen["modules"]
    assert isinstance(modules, list)
    return [m for m in modules if m == package or m.startswith(package + ".")]


@pytest.mark.parametrize("protocol", ["peroneal_gait_gyro.toml",
                                      "exercise_seated_dorsiflexion.toml"])
def test_first_line_of_a_simulation_needs_no_serial_driver_and_no_rich(
        tmp_path: Path, protocol: str) -> None:
    seen = at_first_line("simulate", "--duration", "0.1", "--protocol",
                         str(LIBRARY / protocol), "--db", str(tmp_path / "record.sqlite"))
    assert "simulated RehaStim 2" in str(seen["line"])
    assert loaded(seen, "serial") == []  # pyserial: the hardware path only
    assert loaded(seen, "controller.assembly.hardware") == []
    assert loaded(seen, "controller.devices.rehastim2") == []
    assert loaded(seen, "rich") == []  # the progress bar comes after the first line


def test_a_gait_session_builds_no_exercise_validator(tmp_path: Path) -> None:
    seen = at_first_line("simulate", "--duration", "0.1", "--db",
                         str(tmp_path / "record.sqlite"))
    assert seen["gait_built"] is True
    assert seen["exercise_built"] is False
