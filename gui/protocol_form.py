"""A protocol form generated from the protocol schema, checked as it is typed.

Nothing here lists a protocol's fields: the form walks the pydantic models of
``protocols.schema`` (sections become group boxes, a ``Literal`` a choice, a list of
``Literal`` check boxes, a list of models a repeated group, a tagged union a choice that
swaps its group), so a field added to the schema appears in the form. Numbers are typed
as text, not spun, so a wrong value can be typed, and is then refused beside its field
with the schema's own message and range. :meth:`ProtocolForm.protocol` is None while
anything is invalid: nothing invalid can be saved or started from it.
"""

from __future__ import annotations

import itertools
import typing
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from protocols import Protocol
from protocols.loader import allowed_range, check_protocol_data
from protocols.schema import MODES

Path_ = tuple[str | int, ...]
"""Where a value sits in the protocol, as pydantic's error locations spell it."""

UNITS = {"_ma": "mA", "_us": "µs", "_hz": "Hz", "_s": "s", "_deg": "°", "_uc": "µC",
         "_per_min": "/min"}
ERROR_STYLE = "color: #b00020;"


def unit_of(name: str) -> str:
    """The unit a field's name ends in (``amplitude_max_ma`` -> mA)."""
    return next((unit for suffix, unit in UNITS.items() if name.endswith(suffix)), "")


class ProtocolForm(QWidget):
    """Edits one protocol's data; :attr:`checked` fires after every edit."""

    checked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fields: dict[Path_, QWidget] = {}
        self.messages: dict[Path_, QLabel] = {}
        self.general = QLabel("")
        self.general.setStyleSheet(ERROR_STYLE)
        self.general.setWordWrap(True)
        self._readers: dict[Path_, Callable[[], Any]] = {}
        self._data: dict[str, Any] = {}
        self._model: type[BaseModel] | None = None
        self._body = QWidget()
        self._extra_checks: list[Callable[[], list[tuple[Path_, str]]]] = []
        self._protocol: Protocol | None = None
        self.channels_editable = True
        layout = QVBoxLayout(self)
        layout.addWidget(self.general)
        layout.addWidget(self._body)

    # -- public -----------------------------------------------------------------------------

    def load(self, protocol: Protocol) -> None:
        self.show_data(protocol.model_dump(mode="json"))

    def show_data(self, data: dict[str, Any]) -> None:
        """Rebuild the form for ``data`` (a protocol as plain values)."""
        self._data = data
        self._model = MODES[str(data.get("mode", "gait"))]
        self.fields, self.messages, self._readers = {}, {}, {}
        old = self._body
        self._body = self._group(self._model, data, ())
        layout = self.layout()
        assert layout is not None
        layout.replaceWidget(old, self._body)
        old.deleteLater()
        self.check()

    def add_check(self, check: Callable[[], list[tuple[Path_, str]]]) -> None:
        """A further rule beside the schema's (the locked intensity window)."""
        self._extra_checks.append(check)

    def value(self, path: Path_) -> Any:
        return self._readers[path]()

    def data(self) -> dict[str, Any]:
        """The form's values as protocol data (numbers that do not parse stay text, so the
        schema refuses them with its own message)."""
        result: dict[str, Any] = {}
        for path, read in self._readers.items():
            _put(result, path, read())
        return result

    def protocol(self) -> Protocol | None:
        return self._protocol

    def is_valid(self) -> bool:
        return self._protocol is not None

    def check(self) -> None:
        """Validate everything and put each message beside its field."""
        protocol, errors = check_protocol_data(self.data())
        for check in self._extra_checks:
            errors += check()
        if errors:
            protocol = None
        self._protocol = protocol
        for label in self.messages.values():
            label.setText("")
        general: list[str] = []
        for path, message in errors:
            found = self._nearest_label(tuple(path))
            if found is None:
                general.append(message)
            else:
                found.setText(f"{found.text()}\n{message}".strip())
        self.general.setText("\n".join(general))
        self.checked.emit()

    # -- building ---------------------------------------------------------------------------

    def _group(self, model: type[BaseModel], data: dict[str, Any], path: Path_) -> QWidget:
        title = "" if not path else (f"{str(path[-2]).rstrip('s')} {path[-1] + 1}"
                                     if isinstance(path[-1], int) else str(path[-1]))
        box = QGroupBox(title.replace("_", " "))
        form = QFormLayout(box)
        note = QLabel("")
        note.setStyleSheet(ERROR_STYLE)
        note.setWordWrap(True)
        form.addRow(note)
        self.messages[path] = note
        for name, info in model.model_fields.items():
            value = data.get(name, info.get_default(call_default_factory=True))
            form.addRow(name.replace("_", " "),
                        self._field(info, (*path, name), value))
        return box

    def _field(self, info: FieldInfo, path: Path_, value: Any) -> QWidget:
        annotation = info.annotation
        models = _models(annotation)
        if len(models) == 1 and typing.get_origin(annotation) is not list:
            return self._group(models[0], value or {}, path)
        if len(models) > 1:
            return self._union(models, value or {}, path)
        if typing.get_origin(annotation) is list and models:
            return self._repeated(models[0], value or [], path)
        if typing.get_origin(annotation) is list:
            return self._choices(typing.get_args(typing.get_args(annotation)[0]), value, path)
        return self._leaf(info, annotation, path, value)

    def _leaf(self, info: FieldInfo, annotation: Any, path: Path_, value: Any) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        editor: QWidget
        read: Callable[[], Any]
        if typing.get_origin(annotation) is Literal:
            combo = QComboBox()
            combo.addItems([str(choice) for choice in typing.get_args(annotation)])
            combo.setCurrentText(str(value))
            combo.currentTextChanged.connect(lambda _: self.check())
            editor, read = combo, combo.currentText
        elif annotation is bool:
            box = QCheckBox()
            box.setChecked(bool(value))
            box.toggled.connect(lambda _: self.check())
            editor, read = box, box.isChecked
        else:
            line = QLineEdit("" if value is None else _text(value))
            line.textChanged.connect(lambda _: self.check())
            editor, read = line, _reader(line, annotation)
        layout.addWidget(editor, 1)
        hint = " ".join(part for part in (unit_of(str(path[-1])), allowed_range(info)) if part)
        if hint:
            layout.addWidget(QLabel(hint))
        note = QLabel("")
        note.setStyleSheet(ERROR_STYLE)
        note.setWordWrap(True)
        column = QWidget()
        stack = QVBoxLayout(column)
        stack.setContentsMargins(0, 0, 0, 0)
        stack.addWidget(row)
        stack.addWidget(note)
        if info.description:
            editor.setToolTip(info.description)
        self.fields[path] = editor
        self.messages[path] = note
        self._readers[path] = read
        return column

    def _choices(self, options: tuple[Any, ...], value: list[Any], path: Path_) -> QWidget:
        """A list of named choices (the stimulated phases) as check boxes."""
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        boxes = []
        for option in options:
            box = QCheckBox(str(option))
            box.setChecked(option in (value or []))
            box.toggled.connect(lambda _: self.check())
            layout.addWidget(box)
            boxes.append(box)
        self._readers[path] = lambda: [b.text() for b in boxes if b.isChecked()]
        self.fields[path] = row
        return row

    def _union(self, models: list[type[BaseModel]], value: dict[str, Any],
               path: Path_) -> QWidget:
        """A tagged union (the trigger): a choice of kind swaps the fields below it."""
        kinds = {str(typing.get_args(m.model_fields["kind"].annotation)[0]): m for m in models}
        kind = str(value.get("kind", next(iter(kinds))))
        box = self._group(kinds[kind], value, path)
        form = box.layout()
        assert isinstance(form, QFormLayout)
        chooser = self.fields[(*path, "kind")]
        assert isinstance(chooser, QComboBox)
        chooser.blockSignals(True)
        chooser.clear()
        chooser.addItems(list(kinds))
        chooser.setCurrentText(kind)
        chooser.blockSignals(False)
        chooser.currentTextChanged.connect(lambda new: self._swap(path, new))
        return box

    def _swap(self, path: Path_, kind: str) -> None:
        data = self.data()
        _put(data, path, {"kind": kind})
        self.show_data(data)

    def _repeated(self, model: type[BaseModel], items: list[dict[str, Any]],
                  path: Path_) -> QWidget:
        """A list of sections (the channels), each its own group, with add and remove."""
        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        for index, item in enumerate(items):
            layout.addWidget(self._group(model, item, (*path, index)))
        note = QLabel("")
        note.setStyleSheet(ERROR_STYLE)
        self.messages[path] = note
        layout.addWidget(note)
        buttons = QHBoxLayout()
        add = QPushButton(f"Add {path[-1]!s:.7}")
        remove = QPushButton("Remove the last")
        for button in (add, remove):
            button.setEnabled(self.channels_editable)
            buttons.addWidget(button)
        remove.setEnabled(self.channels_editable and len(items) > 1)
        add.clicked.connect(lambda: self._resize(path, items, +1))
        remove.clicked.connect(lambda: self._resize(path, items, -1))
        layout.addLayout(buttons)
        return holder

    def _resize(self, path: Path_, items: list[dict[str, Any]], change: int) -> None:
        data = self.data()
        current = list(_get(data, path))
        if change > 0:
            copy = dict(current[-1]) if current else {}
            copy["channel"] = max((int(c.get("channel", 0)) for c in current
                                   if str(c.get("channel", "")).isdigit()), default=0) + 1
            current.append(copy)
        elif len(current) > 1:
            current.pop()
        _put(data, path, current)
        self.show_data(data)

    def _nearest_label(self, path: Path_) -> QLabel | None:
        """The message label of the field an error names, or of the section holding it."""
        while True:
            if path in self.messages:
                return self.messages[path]
            if not path:
                return None
            path = path[:-1]


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The models a field holds: itself, a list's item, or a tagged union's members."""
    candidates = [annotation, *typing.get_args(annotation)]
    for candidate in list(candidates):
        candidates += typing.get_args(candidate)
    found: list[type[BaseModel]] = []
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel) and \
                candidate not in found:
            found.append(candidate)
    return found


def _reader(line: QLineEdit, annotation: Any) -> Callable[[], Any]:
    """Read a line as the field's type; text that does not parse is passed on as text,
    so the schema's message says what is wrong."""
    def read() -> Any:
        text = line.text().strip()
        for kind in (int, float):
            if annotation is kind or kind in typing.get_args(annotation):
                try:
                    return kind(text)
                except ValueError:
                    return text
        return line.text()
    return read


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _get(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


def _put(data: dict[str, Any], path: Path_, value: Any) -> None:
    """Set ``value`` at ``path``, making the dicts and lists on the way."""
    target: Any = data
    for part, following in itertools.pairwise(path):
        empty: Any = [] if isinstance(following, int) else {}
        if isinstance(part, int):
            while len(target) <= part:
                target.append(empty)
            target = target[part]
        else:
            target = target.setdefault(part, empty)
    last = path[-1]
    if isinstance(last, int):
        while len(target) <= last:
            target.append(None)
    target[last] = value
