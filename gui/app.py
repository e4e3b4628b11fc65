"""``fes gui``: the desktop application."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

from gui.main_window import MainWindow


def run(db_path: Path | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(db_path)
    window.resize(1280, 860)
    window.show()
    return int(app.exec())
