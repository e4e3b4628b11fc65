"""The therapist's protocol screen: the library, the generated form, the leg picture,
and the lock on the patient's intensity window.

Bundled protocols are read-only: they are opened, and duplicated into the clinic's own
folder to be edited. The patient's window (each channel's minimum and maximum current)
may be narrowed freely, but widening it past what was saved needs the therapist's PIN,
so a patient at the same computer cannot. Save stays disabled while anything is
invalid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import platformdirs
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from gui.leg_diagram import LegDiagram
from gui.pin_store import PinStore
from gui.protocol_form import Path_, ProtocolForm
from protocols import load_protocol
from protocols.loader import LIBRARY, ProtocolError, dump_protocol, library_protocols

WINDOW_FIELDS = ("amplitude_min_ma", "amplitude_max_ma")


def default_clinic_folder() -> Path:
    return Path(platformdirs.user_data_dir("fes-footdrop")) / "protocols"


def clinic_protocols(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.toml")) if folder.is_dir() else []


class ProtocolSetup(QWidget):
    saved = Signal(Path)

    def __init__(self, clinic_folder: Path | None = None, pins: PinStore | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.clinic_folder = clinic_folder or default_clinic_folder()
        self.pins = pins or PinStore()
        self.path: Path | None = None
        self.unlocked = False
        self._saved_windows: list[tuple[float, float]] = []

        self.library = QListWidget()
        self.library.currentItemChanged.connect(self._chosen)
        self.form = ProtocolForm()
        self.form.add_check(self._window_check)
        self.form.checked.connect(self._after_check)
        scroll = QScrollArea()
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        self.leg = LegDiagram()
        self.state = QLabel("")
        self.state.setWordWrap(True)
        self.duplicate_button = QPushButton("Duplicate")
        self.duplicate_button.clicked.connect(self.duplicate)
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save)
        self.pin = QLineEdit()
        self.pin.setEchoMode(QLineEdit.EchoMode.Password)
        self.pin.setPlaceholderText("therapist PIN")
        self.unlock_button = QPushButton("Unlock window")
        self.unlock_button.clicked.connect(lambda: self.unlock(self.pin.text()))
        self.set_pin_button = QPushButton("Set PIN")
        self.set_pin_button.clicked.connect(lambda: self.set_pin(self.pin.text()))
        self.lock_state = QLabel("")
        self.lock_state.setWordWrap(True)

        left = QVBoxLayout()
        left.addWidget(QLabel("Protocols (bundled and the clinic's own)"))
        left.addWidget(self.library, 1)
        left.addWidget(self.duplicate_button)
        left.addWidget(self.save_button)
        left.addWidget(self.state)
        right = QVBoxLayout()
        right.addWidget(self.leg, 1)
        right.addWidget(QLabel("Patient's intensity window"))
        right.addWidget(self.lock_state)
        right.addWidget(self.pin)
        pin_row = QHBoxLayout()
        pin_row.addWidget(self.unlock_button)
        pin_row.addWidget(self.set_pin_button)
        right.addLayout(pin_row)
        body = QHBoxLayout(self)
        body.addLayout(left, 1)
        body.addWidget(scroll, 3)
        body.addLayout(right, 1)
        self.refresh()

    # -- the library ------------------------------------------------------------------------

    def refresh(self) -> None:
        self.library.blockSignals(True)
        self.library.clear()
        for path in [*library_protocols(), *clinic_protocols(self.clinic_folder)]:
            tag = "bundled" if self._bundled(path) else "clinic"
            item = QListWidgetItem(f"{path.stem.replace('_', ' ')}  ·  {tag}")
            item.setData(Qt.ItemDataRole.UserRole, str(path))
            self.library.addItem(item)
            if path == self.path:
                self.library.setCurrentItem(item)
        self.library.blockSignals(False)

    def _chosen(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.open(Path(item.data(Qt.ItemDataRole.UserRole)))

    def open(self, path: Path) -> None:
        try:
            protocol = load_protocol(path)
        except ProtocolError as exc:
            self.state.setText(str(exc))
            return
        self.path = path
        self.unlocked = False
        self._saved_windows = [(ch.amplitude_min_ma, ch.amplitude_max_ma)
                               for ch in protocol.channels]
        self.form.channels_editable = False
        self.form.load(protocol)
        self.state.setText("Bundled: read-only. Duplicate it to make the clinic's own."
                           if self._bundled(path) else f"Clinic protocol: {path}")

    def duplicate(self) -> Path | None:
        """Copy the open protocol, as it stands in the form, into the clinic's folder."""
        protocol = self.form.protocol()
        if self.path is None or protocol is None:
            return None
        self.clinic_folder.mkdir(parents=True, exist_ok=True)
        stem, number = self.path.stem.split("_copy")[0], 1
        while (self.clinic_folder / f"{stem}_copy{number}.toml").exists():
            number += 1
        target = self.clinic_folder / f"{stem}_copy{number}.toml"
        copy = protocol.model_copy(update={"name": f"{protocol.name} (copy {number})"})
        target.write_text(dump_protocol(copy), encoding="utf-8")
        self.refresh()
        self.open(target)
        self.refresh()
        self.saved.emit(target)
        return target

    def save(self) -> bool:
        """Write the form to its clinic file; refused for a bundled file or an invalid form."""
        protocol = self.form.protocol()
        if self.path is None or protocol is None or self._bundled(self.path):
            return False
        self.path.write_text(dump_protocol(protocol), encoding="utf-8")
        self._saved_windows = [(ch.amplitude_min_ma, ch.amplitude_max_ma)
                               for ch in protocol.channels]
        self.lock()
        self.state.setText(f"Saved to {self.path}")
        self.saved.emit(self.path)
        return True

    # -- the window lock --------------------------------------------------------------------

    def set_pin(self, pin: str) -> bool:
        """The first PIN of this installation (changing one needs unlocking first)."""
        try:
            self.pins.set(pin)
        except ValueError as exc:
            self.lock_state.setText(str(exc))
            return False
        self.pin.clear()
        self.lock_state.setText("PIN set. Enter it to unlock the window.")
        self._after_check()
        return True

    def unlock(self, pin: str) -> bool:
        if not self.pins.is_set:
            self.lock_state.setText("No therapist PIN yet: type one (4 digits or more) and "
                                    "press Set PIN.")
            return False
        if not self.pins.verify(pin):
            self.lock_state.setText("Wrong PIN: the window stays locked.")
            return False
        self.pin.clear()
        self.unlocked = True
        self._relayout()
        return True

    def lock(self) -> None:
        self.unlocked = False
        self._relayout()

    def _relayout(self) -> None:
        self.form.channels_editable = self.unlocked
        self.form.show_data(self.form.data())

    def _window_check(self) -> list[tuple[Path_, str]]:
        """Widening a saved window, or adding a channel, needs the PIN."""
        if self.unlocked:
            return []
        refused: list[tuple[Path_, str]] = []
        channels: list[dict[str, Any]] = self.form.data().get("channels", [])
        for index, channel in enumerate(channels):
            if index >= len(self._saved_windows):
                refused.append((("channels", index), "a new channel needs the therapist PIN"))
                continue
            low, high = self._saved_windows[index]
            given_low, given_high = (channel.get(name) for name in WINDOW_FIELDS)
            needs_pin = "widening the patient's window needs the therapist PIN"
            if isinstance(given_low, int | float) and given_low < low:
                refused.append((("channels", index, "amplitude_min_ma"),
                                f"below the saved minimum {low:g} mA: {needs_pin}"))
            if isinstance(given_high, int | float) and given_high > high:
                refused.append((("channels", index, "amplitude_max_ma"),
                                f"above the saved maximum {high:g} mA: {needs_pin}"))
        return refused

    def _after_check(self) -> None:
        protocol = self.form.protocol()
        bundled = self.path is not None and self._bundled(self.path)
        self.save_button.setEnabled(protocol is not None and not bundled)
        self.duplicate_button.setEnabled(protocol is not None)
        self.set_pin_button.setVisible(not self.pins.is_set)
        if self.unlocked:
            self.lock_state.setText("Unlocked: the window may be widened until saved.")
        elif self.pins.is_set:
            self.lock_state.setText("Locked: it can be narrowed; widening needs the PIN.")
        channels = self.form.data().get("channels", [])
        self.leg.show_channels([(int(c["channel"]), str(c.get("site", ""))) for c in channels
                                if isinstance(c.get("channel"), int)])

    def _bundled(self, path: Path) -> bool:
        return path.parent.resolve() == LIBRARY.resolve()
