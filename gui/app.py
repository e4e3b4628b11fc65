"""``fes gui``: the desktop application."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtWidgets import QApplication

from gui.main_window import MainWindow


def install_error_hook(window: MainWindow) -> None:
    """An exception escaping a slot on the GUI thread stops output first; the previous
    hook (which prints it) still runs."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException,
             tb: TracebackType | None) -> None:
        window.gui_failed("".join(traceback.format_exception_only(kind, error)).strip())
        previous(kind, error, tb)

    sys.excepthook = hook


def run(db_path: Path | None = None, clinic_url: str | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(db_path, clinic_url=clinic_url)
    install_error_hook(window)
    window.resize(1280, 860)
    window.show()
    return int(app.exec())
