"""The review screen's files: Export… (CSV or Parquet, what ``fes export`` writes) and
Report… (what ``fes report`` writes), each into a folder the therapist picks, written off
the GUI thread with a progress bar, and a link to where the files went."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QWidget,
)

from controller.exchange import ExportFormat, export_sessions
from controller.record import RecordSource, SessionInfo
from controller.report import build_report
from gui.background import Progress, run_in_background

EXPORT_FORMATS: dict[str, ExportFormat] = {"CSV": "csv", "Parquet": "parquet"}
ERROR_STYLE = "color: #b00020;"
MAX_NAMES_SHOWN = 6
Writer = Callable[[RecordSource, Path, Progress], list[Path]]


class FileActions(QWidget):
    """``open_source`` opens the record under review; ``report_target`` says whose report
    to write (the selected session, else the chosen patient) and ``export_target`` which
    sessions to export. The buttons name their target: :meth:`retarget` when it changes."""

    def __init__(self, open_source: Callable[[], RecordSource],
                 report_target: Callable[[], tuple[str | None, SessionInfo | None]],
                 export_target: Callable[[], list[SessionInfo]]) -> None:
        super().__init__()
        self.open_source = open_source
        self.report_target = report_target
        self.export_target = export_target
        self.written: list[Path] = []
        self.format = QComboBox()
        self.format.addItems(list(EXPORT_FORMATS))
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Write the selected sessions (every listed one if none "
                                      "is selected) as data files, one folder per session.")
        self.export_button.clicked.connect(self.export)
        self.report_button = QPushButton("Report…")
        self.report_button.setToolTip("Write what fes report writes (HTML, PDF, figures): "
                                      "the selected session's report, else the chosen "
                                      "patient's, else every session's.")
        self.report_button.clicked.connect(self.report)
        self.busy = QProgressBar()
        self.busy.setMaximumWidth(220)
        self.busy.hide()
        self.outcome = QLabel("")
        self.outcome.setWordWrap(True)
        self.outcome.setOpenExternalLinks(True)
        self.outcome.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.report_button)
        layout.addWidget(self.export_button)
        layout.addWidget(QLabel("as"))
        layout.addWidget(self.format)
        layout.addWidget(self.busy)
        layout.addWidget(self.outcome, 1)
        self.writing = False
        self.retarget()

    def retarget(self) -> None:
        """Buttons that say what they will write; none while files are being written."""
        patient, session = self.report_target()
        exported = len(self.export_target())
        self.report_button.setText(f"Report on {_subject(patient, session)}…")
        self.report_button.setEnabled(not self.writing and exported > 0)
        self.export_button.setText(f"Export {exported} session{'s' * (exported != 1)}…")
        self.export_button.setEnabled(not self.writing and exported > 0)

    def report(self) -> None:
        patient, session = self.report_target()
        self._write(f"the report on {_subject(patient, session)}",
                    lambda source, folder, progress: build_report(
                        source, folder, patient=None if session else patient,
                        session=session.uuid if session else None, progress=progress))

    def export(self) -> None:
        infos = self.export_target()
        fmt = EXPORT_FORMATS[self.format.currentText()]
        self._write(f"{len(infos)} session(s) as {self.format.currentText()}",
                    lambda source, folder, progress: export_sessions(
                        source, infos, folder, fmt=fmt, progress=progress))

    def _write(self, what: str, write: Writer) -> None:
        folder = QFileDialog.getExistingDirectory(self, f"Folder for {what}")
        if not folder:
            return
        self.writing = True
        self.retarget()
        self.busy.setRange(0, 0)
        self.busy.show()
        self.outcome.setStyleSheet("")
        self.outcome.setText(f"Writing {what} …")
        run_in_background(self, lambda progress: write(self.open_source(), Path(folder),
                                                       progress),
                          lambda paths: self._written(what, Path(folder), paths),
                          self._failed, self._progress)

    def _progress(self, done: int, total: int) -> None:
        self.busy.setRange(0, max(total, 1))
        self.busy.setValue(done)

    def _written(self, what: str, folder: Path, paths: list[Path]) -> None:
        self._done()
        self.written = paths
        link = QUrl.fromLocalFile(str(folder)).toString()
        names = ", ".join(p.name for p in paths[:MAX_NAMES_SHOWN])
        more = f" and {len(paths) - MAX_NAMES_SHOWN} more" if len(paths) > MAX_NAMES_SHOWN \
            else ""
        self.outcome.setText(f"Wrote {what} to <a href=\"{link}\">{folder}</a>: "
                             f"{names}{more}.")

    def _failed(self, reason: str) -> None:
        self._done()
        self.outcome.setStyleSheet(ERROR_STYLE)
        self.outcome.setText(f"Nothing written: {reason}")

    def _done(self) -> None:
        self.writing = False
        self.busy.hide()
        self.retarget()


def _subject(patient: str | None, session: SessionInfo | None) -> str:
    """What a report covers: the selected session, else the chosen patient, else every
    session in the record."""
    if session is not None:
        return f"session {session.id}"
    return patient or "all sessions"
