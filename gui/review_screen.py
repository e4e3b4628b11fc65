"""The therapist's review: the record's sessions, one session's plot and its steps or
repetitions, one patient's progress, and the files ``fes report`` and ``fes export`` write.

Everything is read through a :class:`~controller.record.RecordSource` and drawn by the
report's own figure code, so the screen and the filed report never disagree. Reading a
long session, computing progress and writing files run off the GUI thread: the window,
and a session running beside the review, never wait for them.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from PySide6.QtCore import QItemSelection, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from controller.clinic.source import PostgresSource
from controller.record import (
    RecordSource,
    SessionData,
    SessionInfo,
    SqliteSource,
    list_sessions,
    load_session,
)
from controller.report.build import session_outcomes
from controller.report.figures import progress_figure, session_figure
from gui.background import Progress, run_in_background
from gui.figure_pane import FigurePane
from gui.file_actions import ERROR_STYLE, FileActions
from gui.session_table import (
    PATIENT_COLUMN,
    PROTOCOL_COLUMN,
    PROTOCOL_WIDTH_PX,
    SESSION_HEADINGS,
    UNITS_CAPTION,
    TextTableModel,
    fault_lines,
    faults_text,
    session_rows,
    session_warning,
    table_view,
    unit_table,
    unit_window_s,
)

ALL_PATIENTS = "All patients"
WARNING_STYLE = "background: #fde2e1; color: #7f0000; padding: 6px;"
STATION = "This station's record"
CLINIC = "Clinic database"
CHOOSE_SESSION = "Choose a session in the list to see its plot and its steps or repetitions."


class ReviewScreen(QWidget):
    def __init__(self, db_path: Path, clinic_url: str | None = None,
                 parent: QWidget | None = None) -> None:
        """``clinic_url``: the clinic database (``postgresql://…``) the tab can read instead
        of this station's record."""
        super().__init__(parent)
        self.db_path = db_path
        self.clinic_url = clinic_url
        self.store = QComboBox()
        self.store.addItem(STATION, None)
        if clinic_url is not None:
            self.store.addItem(CLINIC, clinic_url)
        self.store.setVisible(clinic_url is not None)
        self.store.currentIndexChanged.connect(lambda _: self.refresh(self._followed))
        self.infos: list[SessionInfo] = []
        """The sessions listed, newest first, as the list shows them."""
        self.loaded: SessionData | None = None
        self._all: list[SessionInfo] = []
        self._followed: str | None = None
        self._wanted: str | None = None
        self._progress_key: tuple[int, ...] | None = None

        self.patient = QComboBox()
        self.patient.setMinimumContentsLength(12)
        self.patient.currentTextChanged.connect(self._show_list)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(lambda: self.refresh(self._followed))
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.session_model = TextTableModel()
        self.sessions = table_view(self.session_model)
        self.sessions.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.sessions.selectionModel().selectionChanged.connect(self._selection_changed)

        self.title = QLabel("")
        self.title.setWordWrap(True)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(WARNING_STYLE)
        self.warning.hide()
        self.session_plot = FigurePane()
        self.unit_model = TextTableModel()
        self.units = table_view(self.unit_model)
        self.units.selectionModel().currentRowChanged.connect(self._zoom_to_unit)
        self._window_s: tuple[float, float] | None = None
        self.units_caption = QLabel("")
        self.units_caption.setWordWrap(True)
        units_box = QWidget()
        units_layout = QVBoxLayout(units_box)
        units_layout.setContentsMargins(0, 0, 0, 0)
        units_layout.addWidget(self.units_caption)
        units_layout.addWidget(self.units, 1)
        detail = QSplitter(Qt.Orientation.Vertical)
        detail.addWidget(self.session_plot)
        detail.addWidget(units_box)
        detail.setSizes([640, 240])
        session_tab = QWidget()
        session_layout = QVBoxLayout(session_tab)
        session_layout.addWidget(self.title)
        session_layout.addWidget(self.warning)
        session_layout.addWidget(detail, 1)
        self.progress_plot = FigurePane()
        self.views = QTabWidget()
        self.views.addTab(session_tab, "Session")
        self.views.addTab(self.progress_plot, "Progress")
        self.views.currentChanged.connect(self._show_progress)
        self.files = FileActions(self.open_source, self._report_target, self._export_target)

        top = QHBoxLayout()
        top.addWidget(self.store)
        top.addWidget(QLabel("Patient"))
        top.addWidget(self.patient)
        top.addWidget(self.refresh_button)
        top.addWidget(self.message, 1)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(self.sessions)
        body.addWidget(self.views)
        body.setSizes([560, 840])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(body, 1)
        layout.addWidget(self.files)
        self._show_list()

    def open_source(self) -> RecordSource:
        """The record under review: this station's, or the clinic database."""
        url = self.store.currentData()
        return PostgresSource(url) if url else SqliteSource(self.db_path)

    def _store_name(self) -> str:
        return "the clinic database" if self.store.currentData() else str(self.db_path)

    # -- the list -------------------------------------------------------------------------

    def refresh(self, patient: str | None = None) -> None:
        """Read the session list again: sessions may have been recorded since. The filter
        follows ``patient`` (the one chosen for sessions) when that choice has changed."""
        if patient != self._followed:
            self._followed = self._wanted = patient
        if self.store.currentData() is None and not self.db_path.exists():
            self._listed([])
            return
        self.refresh_button.setEnabled(False)
        run_in_background(self, lambda _: list_sessions(self.open_source()), self._listed,
                          self._unreadable)

    def _listed(self, infos: list[SessionInfo]) -> None:
        self.refresh_button.setEnabled(True)
        self._all = infos[::-1]
        chosen = self._wanted or self.patient.currentText()
        self._wanted = None
        patients = sorted({i.patient for i in infos if i.patient})
        self.patient.blockSignals(True)
        self.patient.clear()
        self.patient.addItems([ALL_PATIENTS, *patients])
        self.patient.setCurrentText(chosen if chosen in patients else ALL_PATIENTS)
        self.patient.blockSignals(False)
        self._show_list()

    def _unreadable(self, reason: str) -> None:
        self._listed([])
        self.message.setStyleSheet(ERROR_STYLE)
        self.message.setText(f"The record cannot be read: {reason}")

    def chosen_patient(self) -> str | None:
        text = self.patient.currentText()
        return None if text in ("", ALL_PATIENTS) else text

    def _show_list(self) -> None:
        patient = self.chosen_patient()
        infos = [i for i in self._all if patient is None or i.patient == patient]
        if infos and infos == self.infos:
            return  # nothing new: the selection and what it shows stay
        self.infos = infos
        self.session_model.set_content(SESSION_HEADINGS, *session_rows(self.infos))
        self.sessions.setColumnHidden(PATIENT_COLUMN, patient is not None)
        header = self.sessions.horizontalHeader()
        header.setSectionResizeMode(PROTOCOL_COLUMN, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(PROTOCOL_COLUMN, PROTOCOL_WIDTH_PX)
        self.message.setStyleSheet("")
        self.message.setText("" if self.infos else
                             f"No sessions recorded yet in {self._store_name()}. Sessions "
                             "appear here once they start (the clinic's, once synced).")
        self._clear_detail()
        self._progress_key = None
        self._show_progress()
        self.files.retarget()

    # -- one session ----------------------------------------------------------------------

    def selected(self) -> list[SessionInfo]:
        rows = sorted(index.row() for index in self.sessions.selectionModel().selectedRows())
        return [self.infos[row] for row in rows]

    def current(self) -> SessionInfo | None:
        index = self.sessions.currentIndex()
        return self.infos[index.row()] if index.isValid() and self.selected() else None

    def select_session(self, info: SessionInfo) -> None:
        self.sessions.selectRow(self.infos.index(info))

    def _clear_detail(self) -> None:
        self.loaded = None
        self.title.setText(CHOOSE_SESSION if self.infos else "")
        self.warning.hide()
        self.session_plot.show_message("")
        self.unit_model.set_content((), [], [])
        self.units_caption.setText("")
        self._window_s = None

    def _selection_changed(self, _new: QItemSelection, _old: QItemSelection) -> None:
        self.files.retarget()
        info = self.current()
        if info is None or (self.loaded is not None and self.loaded.info == info):
            return
        self._clear_detail()
        self.title.setText(_title(info))
        warning = session_warning(info)
        self.warning.setText(f"⚠ {warning}" if warning else "")
        self.warning.setVisible(bool(warning))
        self.session_plot.show_message(f"Loading session {info.id} …")
        run_in_background(self, lambda _: _with_figure(load_session(self.open_source(), info)),
                          lambda loaded: self._session_loaded(info, *loaded),
                          lambda reason: self._session_failed(info, reason))

    def _session_loaded(self, info: SessionInfo, data: SessionData, figure: Figure) -> None:
        if self.current() != info:
            return  # another session was chosen while this one loaded
        self.loaded = data
        if data.faults:
            self.warning.setText(f"{self.warning.text()} Faults: {fault_lines(data)}.".strip())
            self.warning.show()
        self.session_plot.show_figure(figure)
        self.unit_model.set_content(*unit_table(data))
        self.units_caption.setText(UNITS_CAPTION.get(data.info.mode, "") if
                                   self.unit_model.rowCount() else
                                   "No steps or repetitions were recorded in this session.")

    def _zoom_to_unit(self) -> None:
        """The plot's detail window moves to the step or repetition chosen in the table."""
        row = self.units.currentIndex().row()
        data = self.loaded
        if data is None or row < 0:
            return
        window = unit_window_s(data, row)
        self._window_s = window
        run_in_background(self, lambda _: session_figure(data, window_s=window),
                          lambda figure: self._zoomed(data, window, figure),
                          self.session_plot.show_message)

    def _zoomed(self, data: SessionData, window: tuple[float, float], figure: Figure) -> None:
        if self.loaded is data and self._window_s == window:
            self.session_plot.show_figure(figure)

    def _session_failed(self, info: SessionInfo, reason: str) -> None:
        if self.current() == info:
            self.session_plot.show_message(f"Session {info.id} cannot be shown: {reason}")

    # -- progress -------------------------------------------------------------------------

    def _show_progress(self) -> None:
        """Computed when the tab is looked at, once per patient and list of sessions."""
        if self.views.currentWidget() is not self.progress_plot:
            return
        patient = self.chosen_patient()
        if patient is None:
            self.progress_plot.show_message("Choose a patient above to see their progress "
                                            "across sessions.")
            return
        key = tuple(i.id for i in self.infos)
        if key == self._progress_key:
            return
        self._progress_key = key
        oldest_first = self.infos[::-1]
        self.progress_plot.show_message(f"Reading {len(key)} sessions of {patient} …")

        def work(progress: Progress) -> Figure:
            return progress_figure(session_outcomes(self.open_source(), oldest_first,
                                                    progress))

        run_in_background(self, work, lambda figure: self._progress_done(key, figure),
                          self.progress_plot.show_message,
                          lambda done, total: self.progress_plot.show_message(
                              f"Read {done} of {total} sessions of {patient} …"))

    def _progress_done(self, key: tuple[int, ...], figure: Figure) -> None:
        if key == self._progress_key:
            self.progress_plot.show_figure(figure)

    # -- what the files cover -------------------------------------------------------------

    def _report_target(self) -> tuple[str | None, SessionInfo | None]:
        selected = self.selected()
        return self.chosen_patient(), selected[0] if len(selected) == 1 else None

    def _export_target(self) -> list[SessionInfo]:
        return self.selected() or self.infos


def _with_figure(data: SessionData) -> tuple[SessionData, Figure]:
    return data, session_figure(data)


def _title(info: SessionInfo) -> str:
    who = info.patient or "anonymous"
    return (f"<b>Session {info.id}</b> · {who} · {info.protocol_name} · {info.units_text} · "
            f"{faults_text(info.faults)}")
