"""Pick a patient from the record or register a new one, by pseudonym only."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget

from controller.record import add_patient, check_pseudonym, list_patients


class PatientPicker(QWidget):
    """An editable list of the record's pseudonyms; a new one is checked as it is typed
    and registered when a session starts under it (or :meth:`register` is called)."""

    def __init__(self, db_path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db_path = db_path
        self.combo = QComboBox()
        self.combo.setEditable(True)
        line = self.combo.lineEdit()
        assert line is not None, "an editable combo box has a line edit"
        line.setPlaceholderText("pseudonym, e.g. P-017")
        self.message = QLabel("")
        self.message.setStyleSheet("color: #b00020;")
        self.message.setWordWrap(True)
        self.combo.editTextChanged.connect(self._check)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo)
        layout.addWidget(self.message)
        self.refresh()

    def refresh(self) -> None:
        typed = self.combo.currentText()
        self.combo.clear()
        self.combo.addItems(list_patients(self.db_path))
        self.combo.setEditText(typed)

    def set_pseudonym(self, pseudonym: str) -> None:
        self.combo.setEditText(pseudonym)

    def pseudonym(self) -> str | None:
        """The chosen pseudonym (None when left empty: an anonymous session), registered
        in the record; ValueError with a message for one that is not a pseudonym."""
        typed = self.combo.currentText().strip()
        if not typed:
            return None
        add_patient(self.db_path, typed)
        self.refresh()
        return typed

    def _check(self, typed: str) -> None:
        try:
            if typed.strip():
                check_pseudonym(typed.strip())
            self.message.setText("")
        except ValueError as exc:
            self.message.setText(str(exc))
