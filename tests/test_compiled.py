"""The compiled hot path: the install compiled it, and an edited source is never shadowed
by its older compiled copy (controller/compiled_modules.py)."""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from controller import compiled_modules
from controller.compiled_modules import COMPILED_MODULES

ROOT = Path(__file__).resolve().parents[1]
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def test_the_install_compiled_the_hot_path() -> None:
    """A failed compilation is only a warning in pip's output; it halves the throughput."""
    if os.environ.get("FES_PURE_PYTHON") == "1":
        pytest.skip("installed with FES_PURE_PYTHON=1")
    if "changed since" in compiled_modules.COMPILED_STATE:
        pytest.skip(f"a source was edited after the install: {compiled_modules.COMPILED_STATE}")
    assert compiled_modules.COMPILED, compiled_modules.COMPILED_STATE
    import controller.safety
    assert Path(controller.safety.__file__).suffix != ".py"


def fake_install(root: Path) -> None:
    """A checkout whose every compiled module has a source saying so and a 'compiled' copy
    that cannot load: importing one proves which of the two Python chose."""
    (root / "controller").mkdir()
    shutil.copy(ROOT / "controller" / "compiled_modules.py", root / "controller")
    shutil.copy(ROOT / "controller" / "__init__.py", root / "controller")
    (root / "controller" / ("compiled__mypyc" + SUFFIX)).write_bytes(b"not a library")
    for module in COMPILED_MODULES:
        source = root.joinpath(*module.split(".")).with_suffix(".py")
        source.parent.mkdir(parents=True, exist_ok=True)
        init = source.parent / "__init__.py"
        if not init.exists():
            init.write_text("")
        source.write_text("FROM = 'source'\n")
        source.with_suffix(SUFFIX).write_bytes(b"not a library")


def imported_from(root: Path, module: str) -> subprocess.CompletedProcess[str]:
    code = ("import controller.compiled_modules as c\nprint(c.COMPILED_STATE, flush=True)\n"
            f"import {module} as m\nprint(m.FROM)")
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": str(root)})


def test_a_source_newer_than_the_compiled_library_is_imported_from_source(
        tmp_path: Path) -> None:
    fake_install(tmp_path)
    library = tmp_path / "controller" / ("compiled__mypyc" + SUFFIX)
    os.utime(library, (1_000_000_000, 1_000_000_000))  # built long before the sources
    result = imported_from(tmp_path, "controller.safety")
    assert result.returncode == 0, result.stderr
    state, origin = result.stdout.splitlines()
    assert "changed since" in state and "controller.safety" in state
    assert origin == "source"
    result = imported_from(tmp_path, "simulator.inmemory")
    assert result.returncode == 0 and result.stdout.splitlines()[1] == "source", result.stderr


def test_a_library_newer_than_every_source_is_the_one_imported(tmp_path: Path) -> None:
    fake_install(tmp_path)
    for module in COMPILED_MODULES:
        os.utime(tmp_path.joinpath(*module.split(".")).with_suffix(".py"),
                 (1_000_000_000, 1_000_000_000))
    result = imported_from(tmp_path, "controller.safety")
    assert "compiled with mypyc" in result.stdout
    assert result.returncode != 0 and "ImportError" in result.stderr, \
        "the (unloadable) compiled copy was chosen"
