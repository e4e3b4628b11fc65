"""TOML in, TOML out, and therapist-readable errors.

Pydantic knows the field and the limit but not the file or the line; this module adds
both, so a refused protocol names the file, the line, the field and the allowed range
in one message.
"""

from __future__ import annotations

import re
import tomllib
import typing
from functools import cache
from pathlib import Path
from typing import Any

import annotated_types
import tomli_w
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from protocols.schema import MODES, TRIGGER_KINDS, AnyProtocol, Protocol

LIBRARY = Path(__file__).parent / "library"


class ProtocolError(ValueError):
    """A protocol file that cannot be used; the message is meant for the therapist."""


def load_protocol(path: Path | str) -> Protocol:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProtocolError(f"{path}: no such protocol file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{path}: cannot read protocol file ({exc})") from None
    return parse_protocol(text, str(path))


def parse_protocol(text: str, source: str = "<protocol>") -> Protocol:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ProtocolError(f"{source}: not valid TOML: arrays or tables nested too "
                            "deeply") from None
    mode = data.get("mode", "gait")
    if not isinstance(mode, str) or mode not in MODES:
        raise ProtocolError(f"{source}:{_line_of(text, ('mode',)) or 1}: mode: "
                            f"{_shown(mode)} is not a mode (allowed: "
                            f"{', '.join(map(repr, MODES))})")
    model = typing.cast(type[Protocol], MODES[mode])
    try:  # the model of the file's mode alone: the other mode's validator is never built
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [_describe({**error, "loc": (mode, *error["loc"])}, text, source)
                 for error in exc.errors()]  # tagged as the union would: see _without_tags
        raise ProtocolError("\n".join(lines)) from None


_FILE_ORDER = ("name", "description", "mode", "leg", "extension_s", "channels", "stimulation",
               "trigger", "exercise", "safety", "session")
"""Top-level keys in the order a therapist reads a file: who and what first, limits last."""


def dump_protocol(protocol: Protocol) -> str:
    """TOML text that loads back to an equal protocol."""
    data = protocol.model_dump(mode="json")
    return tomli_w.dumps({key: data[key] for key in _FILE_ORDER if key in data})


def library_protocols() -> list[Path]:
    return sorted(LIBRARY.glob("*.toml"))


def check_protocol_data(data: dict[str, Any]
                        ) -> tuple[Protocol | None, list[tuple[tuple[Any, ...], str]]]:
    """Validate a protocol given as data (the GUI's form) rather than as a file: the
    protocol, or each error's location (as a file spells it) with its message."""
    try:
        return _any_protocol().validate_python(data), []
    except ValidationError as exc:
        return None, [(_without_tags(tuple(e["loc"])), _message(e)) for e in exc.errors()]


@cache
def _any_protocol() -> TypeAdapter[Protocol]:
    """A validator of either mode, told apart by ``mode`` (built on first use)."""
    return TypeAdapter(AnyProtocol)


def _describe(error: Any, text: str, source: str) -> str:
    loc = _without_tags(tuple(error["loc"]))
    field = _dotted(loc) or "protocol"
    line = _line_of(text, loc)
    where = f"{source}:{line}" if line else source
    return f"{where}: {field}: {_message(error)}"


def _message(error: Any) -> str:
    """What is wrong with one field, its allowed range and the value given."""
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (check the spelling and the units in the name)"
    allowed = _allowed_range(tuple(error["loc"]))
    got = ""
    if error["type"] not in ("missing", "extra_forbidden") and not isinstance(
            error.get("input"), dict | list):
        got = f", got {_shown(error['input'])}"
    suffix = f" (allowed: {allowed})" if allowed else ""
    return f"{message}{suffix}{got}"


def _shown(value: Any, limit: int = 60) -> str:
    """A value as the message quotes it, cut short: a 400-digit number is not read."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _without_tags(tagged_loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The location as the file spells it: pydantic puts the union tags in (the mode first,
    the trigger kind after ``trigger``), which a therapist never wrote."""
    loc = tagged_loc[1:] if tagged_loc[:1] and tagged_loc[0] in MODES else tagged_loc
    return tuple(part for index, part in enumerate(loc)
                 if not (index > 0 and loc[index - 1] == "trigger" and part in TRIGGER_KINDS))


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _allowed_range(loc: tuple[Any, ...]) -> str:
    info = _field_info(loc)
    return "" if info is None else allowed_range(info)


def allowed_range(info: FieldInfo) -> str:
    """A field's bounds as a therapist reads them: ``>= 0 and <= 120``."""
    bounds: list[str] = []
    for item in info.metadata:
        for kind, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if isinstance(item, getattr(annotated_types, kind.capitalize())):
                bounds.append(f"{sign} {getattr(item, kind)}")
    return " and ".join(bounds)


def _field_info(loc: tuple[Any, ...]) -> FieldInfo | None:
    """Walk the schema along an error location (tags included) to the field it names."""
    choices: dict[str, type[BaseModel]] = dict(MODES)
    info: FieldInfo | None = None
    for part in loc:
        if isinstance(part, int):
            continue
        if part in choices and len(choices) > 1:
            choices = {"": choices[part]}
            continue
        model = choices.get("")
        if model is None or part not in model.model_fields:
            return None
        info = model.model_fields[part]
        choices = _models_of(info.annotation)
    return info


def _models_of(annotation: Any) -> dict[str, type[BaseModel]]:
    """The model(s) a field holds: one under '', or a tagged union's members by tag."""
    members = [c for c in typing.get_args(annotation) or (annotation,)
               if isinstance(c, type) and issubclass(c, BaseModel)]
    if len(members) == 1:
        return {"": members[0]}
    return {_literal_tag(m): m for m in members}


def _literal_tag(model: type[BaseModel]) -> str:
    """The value of a tagged union member's ``kind: Literal[...]`` field."""
    return str(typing.get_args(model.model_fields["kind"].annotation)[0])


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.]+)\s*\]\]?")


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line number of the key an error names (1-based), for the message."""
    table: list[str] = []
    names = [part for part in loc if isinstance(part, str)]
    indexes = [part for part in loc if isinstance(part, int)]
    wanted_table, key = names[:-1], names[-1] if names else None
    seen_arrays: dict[str, int] = {}
    table_line: int | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(raw)
        if header:
            name = header.group(2)
            table = name.split(".")
            if header.group(1) == "[[":
                seen_arrays[name] = seen_arrays.get(name, -1) + 1
                if indexes and seen_arrays[name] != indexes[0]:
                    table = [name, "#other"]
            if table == wanted_table or table == names:
                table_line = number
            continue
        if key and table == wanted_table and re.match(rf"^\s*{re.escape(key)}\s*=", raw):
            return number
    return table_line
