"""The therapist's protocol screen, offscreen with pytest-qt: the generated form refuses a
wrong value at its field, nothing invalid is saved, bundled protocols are read-only,
and the patient's window cannot be widened without the PIN."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from gui.leg_diagram import LegDiagram
from gui.pin_store import PinStore
from gui.protocol_form import ProtocolForm
from gui.protocol_setup import ProtocolSetup
from protocols import load_protocol
from protocols.loader import library_protocols

SEATED = next(p for p in library_protocols() if p.stem == "exercise_seated_dorsiflexion")
PIN = "4711"


@pytest.fixture
def setup(qtbot: QtBot, tmp_path: Path) -> ProtocolSetup:
    screen = ProtocolSetup(tmp_path / "protocols", PinStore(tmp_path / "pin.json"))
    qtbot.addWidget(screen)
    screen.show()
    return screen


def field(setup: ProtocolSetup, *path: str | int) -> QLineEdit:
    editor = setup.form.fields[path]
    assert isinstance(editor, QLineEdit)
    return editor


def retype(qtbot: QtBot, editor: QLineEdit, text: str) -> None:
    editor.selectAll()
    qtbot.keyClicks(editor, text)


def clinic_copy(setup: ProtocolSetup) -> Path:
    setup.open(SEATED)
    copy = setup.duplicate()
    assert copy is not None and copy.parent == setup.clinic_folder
    return copy


@pytest.mark.parametrize("path", library_protocols(), ids=lambda p: p.stem)
def test_every_bundled_protocol_opens_valid_in_the_generated_form(
        qtbot: QtBot, path: Path) -> None:
    form = ProtocolForm()
    qtbot.addWidget(form)
    form.load(load_protocol(path))
    assert form.protocol() == load_protocol(path)
    assert not any(label.text() for label in form.messages.values())


def test_a_wrong_value_is_refused_beside_its_field_and_cannot_be_saved(
        setup: ProtocolSetup, qtbot: QtBot) -> None:
    copy = clinic_copy(setup)
    before = copy.read_text()
    retype(qtbot, field(setup, "stimulation", "frequency_hz"), "500")
    message = setup.form.messages[("stimulation", "frequency_hz")].text()
    assert "less than or equal" in message and "500" in message
    assert not setup.save_button.isEnabled()
    qtbot.mouseClick(setup.save_button, Qt.MouseButton.LeftButton)
    assert not setup.save(), "refused when called directly too"
    assert copy.read_text() == before, "nothing written"
    retype(qtbot, field(setup, "stimulation", "frequency_hz"), "abc")
    assert "valid number" in setup.form.messages[("stimulation", "frequency_hz")].text()
    retype(qtbot, field(setup, "stimulation", "frequency_hz"), "35")
    assert setup.form.messages[("stimulation", "frequency_hz")].text() == ""
    assert setup.save_button.isEnabled()


def test_a_rule_across_fields_is_shown_on_its_section(setup: ProtocolSetup,
                                                      qtbot: QtBot) -> None:
    clinic_copy(setup)
    retype(qtbot, field(setup, "channels", 0, "amplitude_start_ma"), "39")
    retype(qtbot, field(setup, "channels", 0, "amplitude_max_ma"), "30")  # narrowing
    assert "amplitude_min_ma <= amplitude_start_ma <= amplitude_max_ma" in \
        setup.form.messages[("channels", 0)].text()
    assert setup.form.protocol() is None


def test_a_valid_edit_saves_as_toml_that_loads_back_equal(setup: ProtocolSetup,
                                                          qtbot: QtBot) -> None:
    saved: list[Path] = []
    setup.saved.connect(saved.append)
    copy = clinic_copy(setup)
    retype(qtbot, field(setup, "exercise", "hold_s"), "2.5")
    retype(qtbot, field(setup, "exercise", "reps"), "12")
    qtbot.mouseClick(setup.save_button, Qt.MouseButton.LeftButton)
    loaded = load_protocol(copy)
    assert loaded == setup.form.protocol()
    assert loaded.exercise.hold_s == 2.5 and loaded.exercise.reps == 12  # type: ignore[union-attr]
    assert saved[-1] == copy


def test_a_bundled_protocol_is_read_only_but_can_be_duplicated(
        setup: ProtocolSetup, qtbot: QtBot) -> None:
    setup.open(SEATED)
    before = SEATED.read_text()
    retype(qtbot, field(setup, "exercise", "reps"), "12")
    assert not setup.save_button.isEnabled() and not setup.save()
    assert SEATED.read_text() == before
    copy = setup.duplicate()
    assert copy is not None and "(copy 1)" in load_protocol(copy).name
    assert load_protocol(copy).exercise.reps == 12  # type: ignore[union-attr]
    assert any("clinic" in setup.library.item(i).text() for i in range(setup.library.count()))


def test_the_window_cannot_be_widened_without_the_pin_and_can_with_it(
        setup: ProtocolSetup, qtbot: QtBot) -> None:
    copy = clinic_copy(setup)  # window 10-40 mA
    maximum = field(setup, "channels", 0, "amplitude_max_ma")
    retype(qtbot, maximum, "35")
    assert setup.form.protocol() is not None, "narrowing needs no PIN"
    retype(qtbot, maximum, "60")
    assert "needs the therapist PIN" in \
        setup.form.messages[("channels", 0, "amplitude_max_ma")].text()
    assert not setup.save_button.isEnabled()
    assert not setup.unlock(PIN), "no PIN set yet"
    assert "No therapist PIN yet" in setup.lock_state.text()
    qtbot.keyClicks(setup.pin, PIN)
    qtbot.mouseClick(setup.set_pin_button, Qt.MouseButton.LeftButton)
    assert not setup.unlock("0000"), "a wrong PIN is refused"
    assert "Wrong PIN" in setup.lock_state.text()
    qtbot.keyClicks(setup.pin, PIN)
    qtbot.mouseClick(setup.unlock_button, Qt.MouseButton.LeftButton)
    assert setup.unlocked
    assert setup.form.protocol() is not None
    assert setup.save()
    assert load_protocol(copy).channels[0].amplitude_max_ma == 60
    assert not setup.unlocked, "saving locks the window again"
    retype(qtbot, field(setup, "channels", 0, "amplitude_min_ma"), "5")
    assert "needs the therapist PIN" in \
        setup.form.messages[("channels", 0, "amplitude_min_ma")].text()


def test_the_pin_is_kept_only_as_a_salted_slow_hash(tmp_path: Path) -> None:
    first, second = PinStore(tmp_path / "a.json"), PinStore(tmp_path / "b.json")
    first.set(PIN)
    second.set(PIN)
    stored = first.path.read_bytes()
    assert PIN.encode() not in stored
    record_a, record_b = json.loads(stored), json.loads(second.path.read_bytes())
    assert record_a["hash"] != record_b["hash"] and record_a["salt"] != record_b["salt"]
    assert record_a["scrypt"]["n"] >= 2**14
    assert first.verify(PIN) and not first.verify("4712")
    with pytest.raises(ValueError, match="current PIN"):
        first.set("9999")
    first.set("9999", old_pin=PIN)
    assert first.verify("9999")
    with pytest.raises(ValueError, match="at least 4 digits"):
        PinStore(tmp_path / "c.json").set("12")


def test_the_leg_picture_marks_each_channel_at_its_site(qtbot: QtBot) -> None:
    leg = LegDiagram()
    qtbot.addWidget(leg)
    leg.resize(240, 360)

    def picture() -> QImage:
        image = QImage(leg.size(), QImage.Format.Format_RGB32)
        leg.render(image)
        return image

    bare = picture()
    leg.show_channels([(1, "common peroneal nerve, below the fibular head"),
                       (2, "tibialis anterior motor point")])
    marked = picture()
    (_, peroneal), (_, tibialis) = leg.markers()
    assert peroneal.y() < tibialis.y(), "the nerve site is above the muscle belly"
    for point in (peroneal, tibialis):
        assert marked.pixel(point.toPoint()) != bare.pixel(point.toPoint())
