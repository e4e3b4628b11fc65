"""A matplotlib figure of the report drawn inside the window (the same figure the report
files), or one sentence where there is none yet.

The canvas fits the figure to the pane's width; a figure taller than the pane (the
progress of a patient with walks and exercises) keeps a readable height and scrolls
rather than being squashed until its labels overlap."""

from __future__ import annotations

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

MIN_PX_PER_INCH = 65
"""The least height a figure is drawn at, per inch of the height it was designed for."""


class FigurePane(QWidget):
    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.message = QLabel(text)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setWordWrap(True)
        self.canvas: FigureCanvasQTAgg | None = None
        self.area = QScrollArea()
        self.area.setWidgetResizable(True)
        self.area.setFrameShape(QFrame.Shape.NoFrame)
        self.area.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.message)
        layout.addWidget(self.area)

    def show_message(self, text: str) -> None:
        self._drop_canvas()
        self.message.setText(text)
        self.message.show()
        self.area.hide()

    def show_figure(self, figure: Figure) -> None:
        """The canvas resizes the figure to the pane; constrained layout re-flows it."""
        self._drop_canvas()
        self.message.hide()
        self.canvas = FigureCanvasQTAgg(figure)  # type: ignore[no-untyped-call]
        self.canvas.setMinimumHeight(round(figure.get_figheight() * MIN_PX_PER_INCH))
        self.area.setWidget(self.canvas)
        self.area.show()

    def _drop_canvas(self) -> None:
        if self.canvas is not None:
            self.area.takeWidget()
            self.canvas.deleteLater()
            self.canvas = None
