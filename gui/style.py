"""Fonts and the big buttons the live and patient screens share."""

from __future__ import annotations

from PySide6.QtGui import QFont
from PySide6.QtWidgets import QPushButton, QSizePolicy


def font(points: int, bold: bool = False) -> QFont:
    made = QFont()
    made.setPointSize(points)
    made.setBold(bold)
    return made


def big_button(text: str, colour: str, points: int = 24) -> QPushButton:
    """A wide button in white on ``colour`` that greys out when disabled."""
    button = QPushButton(text)
    button.setFont(font(points, bold=True))
    button.setStyleSheet(f"QPushButton {{ background: {colour}; color: white; padding: 16px; }}"
                         " QPushButton:disabled { background: #bdbdbd; color: #eeeeee; }")
    button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    return button
