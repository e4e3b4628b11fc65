"""A side view of the lower leg with each channel's electrodes where its site says."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from gui.style import font

SITES = (
    (("peroneal", "fibular"), (0.46, 0.16), "below the fibular head"),
    (("tibialis", "shin"), (0.56, 0.38), "front of the shin"),
    (("gastrocnemius", "soleus", "calf"), (0.32, 0.32), "back of the calf"),
    (("quadriceps", "thigh"), (0.50, 0.03), "above the knee"),
    (("dorsum", "extensor digitorum", "foot"), (0.66, 0.86), "top of the foot"),
)
"""Where on the drawing (fractions of width, height) a site named with these words goes;
the common peroneal nerve when nothing matches, the usual foot-drop site."""


def site_position(site: str) -> tuple[float, float]:
    lowered = site.lower()
    for words, position, _ in SITES:
        if any(word in lowered for word in words):
            return position
    return SITES[0][1]


class LegDiagram(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.channels: list[tuple[int, str]] = []
        self.setMinimumSize(220, 320)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)

    def show_channels(self, channels: list[tuple[int, str]]) -> None:
        """``(channel, site)`` pairs to mark."""
        self.channels = channels
        self.update()

    def markers(self) -> list[tuple[int, QPointF]]:
        """Where each channel's marker is drawn, in widget pixels."""
        w, h = self.width(), self.height()
        placed: list[tuple[int, QPointF]] = []
        for channel, site in self.channels:
            x, y = site_position(site)
            shift = 0.06 * sum(1 for _, other in self.channels[:len(placed)]
                               if site_position(other) == (x, y))
            placed.append((channel, QPointF((x + shift) * w, (y + shift) * h)))
        return placed

    def paintEvent(self, event: QPaintEvent) -> None:
        w, h = self.width(), self.height()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        leg = QPainterPath()
        leg.moveTo(0.30 * w, 0.02 * h)   # back of the knee
        leg.cubicTo(0.22 * w, 0.25 * h, 0.34 * w, 0.45 * h, 0.40 * w, 0.78 * h)  # calf
        leg.lineTo(0.36 * w, 0.90 * h)   # heel
        leg.lineTo(0.92 * w, 0.93 * h)   # sole to the toes
        leg.lineTo(0.90 * w, 0.86 * h)
        leg.cubicTo(0.74 * w, 0.80 * h, 0.62 * w, 0.74 * h, 0.57 * w, 0.70 * h)  # instep
        leg.lineTo(0.60 * w, 0.02 * h)   # front of the shin
        leg.closeSubpath()
        painter.setPen(QPen(QColor("#546e7a"), 2))
        painter.setBrush(QColor("#ffe0c8"))
        painter.drawPath(leg)
        painter.setFont(font(10, bold=True))
        for channel, centre in self.markers():
            painter.setPen(QPen(QColor("#b71c1c"), 2))
            painter.setBrush(QColor("#ef5350"))
            painter.drawEllipse(centre, 13, 13)
            painter.setPen(QColor("white"))
            painter.drawText(QRectF(centre.x() - 13, centre.y() - 13, 26, 26),
                             Qt.AlignmentFlag.AlignCenter, str(channel))
        painter.end()
