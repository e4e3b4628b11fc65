"""A matplotlib figure of the report drawn inside the window (the same figure the report
files), or one sentence where there is none yet."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class FigurePane(QWidget):
    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.message = QLabel(text)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.canvas: FigureCanvasQTAgg | None = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self.message)

    def show_message(self, text: str) -> None:
        self._drop_canvas()
        self.message.setText(text)
        self.message.show()

    def show_figure(self, figure: Figure) -> None:
        """The canvas resizes the figure to the pane; constrained layout re-flows it."""
        self._drop_canvas()
        self.message.hide()
        self.canvas = FigureCanvasQTAgg(figure)  # type: ignore[no-untyped-call]
        self._layout.addWidget(self.canvas)

    def _drop_canvas(self) -> None:
        if self.canvas is not None:
            self._layout.removeWidget(self.canvas)
            self.canvas.deleteLater()
            self.canvas = None
