"""Patients in the record: pseudonyms only."""

from __future__ import annotations

import re
from contextlib import closing
from pathlib import Path

from controller.record.reader import read_rows
from controller.record.schema import open_record
from controller.record.writer import now_iso

PSEUDONYM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
"""A pseudonym: letters, digits, ``_ . -``, at most 32 characters (no spaces, so a full
name is not typed in by habit)."""


def check_pseudonym(pseudonym: str) -> str:
    """The pseudonym as stored, or ValueError saying what a valid one looks like."""
    if not PSEUDONYM.fullmatch(pseudonym):
        raise ValueError(f"{pseudonym!r} is not a pseudonym: use 1-32 letters, digits, "
                         "'_', '.' or '-' (e.g. P-017), no spaces and no real names")
    return pseudonym


def add_patient(path: Path, pseudonym: str) -> None:
    """Register a patient before any session (nothing happens if already there)."""
    with closing(open_record(path)) as db:
        db.execute("INSERT OR IGNORE INTO patients (pseudonym, created_at) VALUES (?,?)",
                   (check_pseudonym(pseudonym), now_iso()))


def list_patients(path: Path) -> list[str]:
    """Every patient's pseudonym in the record, sorted (none if there is no record yet)."""
    if not path.exists():
        return []
    return [row[0] for row in read_rows(path, "SELECT pseudonym FROM patients "
                                              "ORDER BY pseudonym")]
