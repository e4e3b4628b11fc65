"""The review screen's tables as a therapist reads them: the session list, and one
session's steps or repetitions (counted from 1, units in the headings, yes/no for flags).

Rows that need a second look (a session that did not end well, a step that was not
stimulated) carry a warning: drawn on a pale red ground, its reason as the tooltip.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from controller.record import SessionData, SessionInfo

WARNING_GROUND = QColor("#fde2e1")
STATUS_WORDS = {
    "completed": "completed",
    "stopped": "stopped by user",
    "running": "running now",
    "emergency_stop": "⚠ emergency stop",
    "failed": "⚠ failed",
    "faulted": "⚠ faulted",
    "interrupted": "⚠ interrupted",
}
STATUS_WARNINGS = {
    "emergency_stop": "Ended by an emergency stop.",
    "failed": "Ended by an unexpected error; output was forced off.",
    "faulted": "A fault latched: no output from the fault on.",
    "interrupted": "The program recording it stopped before the end: the record holds "
                   "what was saved until then.",
}
SESSION_HEADINGS = ("Date", "Status", "Protocol", "Steps / reps", "Duration", "Faults",
                    "Mode", "Patient")
PATIENT_COLUMN = SESSION_HEADINGS.index("Patient")
PROTOCOL_COLUMN = SESSION_HEADINGS.index("Protocol")
PROTOCOL_WIDTH_PX = 180
"""Protocol names are long: elided to leave the plot its room (the tooltip has it whole)."""
UNITS_CAPTION = {
    "gait": "Steps, timed in seconds from the start of the session as on the plot; pale red: "
            "a step not stimulated or with no heel strike. Choose a step to see it in the plot.",
    "exercise": "Repetitions, timed in seconds from the start of the session as on the plot; "
                "peak angle from the foot's rest position. Choose a repetition to see it in "
                "the plot.",
}
COUNTERS = ("step", "set_index", "rep_index")
"""Stored from 0; shown from 1, as the cues say them."""
FLAGS = ("stimulated", "assisted")
STEP_OUTCOMES = {"completed": "heel strike found", "missed_heel_strike": "no heel strike",
                 "stopped": "stopped mid-step"}
UNITS = {"_s": "s", "_deg": "°", "_uc": "µC", "_ma": "mA"}

Index = QModelIndex | QPersistentModelIndex
ROOT = QModelIndex()


class TextTableModel(QAbstractTableModel):
    """Rows of text with an optional warning per row; read-only."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: tuple[str, ...] = ()
        self.rows: list[list[str]] = []
        self.warnings: list[str | None] = []

    def set_content(self, headings: tuple[str, ...], rows: list[list[str]],
                    warnings: list[str | None]) -> None:
        self.beginResetModel()
        self.headings, self.rows, self.warnings = headings, rows, warnings
        self.endResetModel()

    def rowCount(self, parent: Index = ROOT) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = ROOT) -> int:
        return 0 if parent.isValid() else len(self.headings)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        warning = self.warnings[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.rows[index.row()][index.column()]
        if role == Qt.ItemDataRole.BackgroundRole and warning:
            return QBrush(WARNING_GROUND)
        if role == Qt.ItemDataRole.ToolTipRole:
            return warning or self.rows[index.row()][index.column()]
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.headings[section]
        return None


def table_view(model: TextTableModel) -> QTableView:
    """A read-only table that selects whole rows and sizes columns to their text."""
    view = QTableView()
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().hide()
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    view.horizontalHeader().setStretchLastSection(True)
    return view


def local_time(iso: str) -> str:
    """The record's UTC start as the station's local date and time."""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def minutes_seconds(duration_s: float) -> str:
    minutes, seconds = divmod(round(duration_s), 60)
    return f"{minutes}:{seconds:02d}"


def status_text(info: SessionInfo) -> str:
    return STATUS_WORDS.get(info.status, info.status)


def session_warning(info: SessionInfo) -> str | None:
    """Why this session deserves a second look, if it does."""
    if info.status in STATUS_WARNINGS:
        return STATUS_WARNINGS[info.status]
    if info.faults:
        return f"{info.faults} fault(s) recorded."
    return None


def session_rows(infos: list[SessionInfo]) -> tuple[list[list[str]], list[str | None]]:
    rows = [[local_time(i.started_at), status_text(i), i.protocol_name, i.units_text,
             minutes_seconds(i.duration_s), str(i.faults) if i.faults else "none", i.mode,
             i.patient or "anonymous"] for i in infos]
    return rows, [session_warning(i) for i in infos]


def heading(column: str) -> str:
    """``peak_angle_deg`` -> ``Peak angle (°)``, ``set_index`` -> ``Set``."""
    for suffix, unit in UNITS.items():
        if column.endswith(suffix):
            return f"{heading(column.removesuffix(suffix))} ({unit})"
    return column.removesuffix("_index").replace("_", " ").capitalize()


def cell(column: str, value: Any) -> str:
    if value is None:
        return "—"
    if column in COUNTERS:
        return str(int(value) + 1)
    if column in FLAGS:
        return "yes" if value else "no"
    if column == "outcome":
        return STEP_OUTCOMES.get(str(value), str(value))
    if isinstance(value, float):
        return f"{value:.2f}" if column.endswith("_s") else f"{value:.1f}"
    return str(value).replace("_", " ")


def fault_lines(data: SessionData) -> str:
    """What latched and when, in the session's own seconds (as on the plot)."""
    return "; ".join(f"{note.kind.replace('_', ' ')} at {note.t_s:.1f} s"
                     + (f" ({note.text})" if note.text else "") for note in data.faults)


def faults_text(count: int) -> str:
    return "no faults" if not count else "1 fault" if count == 1 else f"{count} faults"


def step_warning(step: dict[str, Any]) -> str | None:
    if step["outcome"] != "completed":
        return f"Step {step['step'] + 1}: {cell('outcome', step['outcome'])}."
    if not step["charge_uc"]:
        return f"Step {step['step'] + 1}: not stimulated."
    return None


def unit_table(data: SessionData) -> tuple[tuple[str, ...], list[list[str]],
                                           list[str | None]]:
    """The session's steps (gait) or repetitions (exercise); columns no row fills are
    left out (sway only means something for a balance exercise)."""
    units = data.steps if data.info.mode == "gait" else data.repetitions
    if not units:
        return (), [], []
    columns = [c for c in units[0] if any(u[c] is not None for u in units)]
    rows = [[cell(c, u[c]) for c in columns] for u in units]
    warnings: list[str | None] = [step_warning(u) if data.info.mode == "gait" else None
                                  for u in units]
    return tuple(heading(c) for c in columns), rows, warnings


STEP_LEAD_S = 3.0
STEP_WINDOW_S = 10.0
REP_MARGIN_S = 2.0


def unit_window_s(data: SessionData, row: int) -> tuple[float, float]:
    """The plot's detail window around one step (a few steps either side, as the plot's
    own first window) or one repetition (with its cue and its return to rest)."""
    if data.info.mode == "gait":
        start = float(data.steps[row]["start_s"]) - STEP_LEAD_S
        return start, start + STEP_WINDOW_S
    rep = data.repetitions[row]
    onset = float(rep["onset_s"])
    end = float(rep["end_s"]) if rep["end_s"] is not None else onset + STEP_WINDOW_S
    return onset - REP_MARGIN_S, end + REP_MARGIN_S
