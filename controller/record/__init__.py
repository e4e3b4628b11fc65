"""The session record: one SQLite file per station holding everything sessions saw and did.

``schema`` (versions, migrations, the checks made before a file is used), ``writer`` (one
session written as it runs), ``reader`` (sessions read back, from SQLite or the clinic
database), ``patients`` (pseudonyms).
"""

from pathlib import Path

import platformdirs

from controller.record.patients import add_patient, check_pseudonym, list_patients
from controller.record.reader import (
    RecordSource,
    SessionData,
    SessionInfo,
    SqliteSource,
    find_session,
    list_sessions,
    load_session,
    read_rows,
)
from controller.record.schema import RecordOpenError, open_record
from controller.record.writer import SessionRecord


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir("fes-footdrop")) / "sessions.sqlite"


__all__ = ["RecordOpenError", "RecordSource", "SessionData", "SessionInfo", "SessionRecord",
           "SqliteSource", "add_patient", "check_pseudonym", "default_db_path", "find_session",
           "list_patients", "list_sessions", "load_session", "open_record", "read_rows"]
