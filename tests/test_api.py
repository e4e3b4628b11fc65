"""The README's Python API example, run exactly as printed there."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from controller.record import read_rows

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    match = re.search(r"<!-- api-example -->\s*```python\n(.*?)```", README.read_text(),
                      re.DOTALL)
    assert match, "the README has no api-example block"
    return match.group(1)


def test_the_readme_api_example_runs_a_supervised_session(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code = readme_example()
    assert len(code.strip().splitlines()) <= 15
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})  # noqa: S102
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("completed ") and out[-1].endswith(" stimulated steps")
    assert int(out[-1].split()[1]) >= 25
    assert sum(" heel_strike" in line for line in out) >= 25
    db = tmp_path / "demo.sqlite"
    assert os.path.exists(db)
    assert read_rows(db, "SELECT kind, detail FROM notices WHERE kind = 'nudge'") == [
        ("nudge", "channel 1: 26 mA")]
