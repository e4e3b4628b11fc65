"""A throwaway PostgreSQL server for the clinic database tests.

The server binaries are looked for on PATH, then in Debian's /usr/lib/postgresql/*/bin.
initdb and postgres refuse to run as root, so under root the server runs as the
``postgres`` user (or ``nobody``) in a temporary directory given to that user; any other
user runs it as itself. Where no server can be started, :class:`PostgresUnavailable` says
why (the tests then skip).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "fes"
START_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


@dataclass
class PostgresServer:
    bin_dir: Path
    base_dir: Path
    port: int
    run_as: pwd.struct_passwd | None

    def url(self, database: str = "postgres", user: str = SUPERUSER,
            password: str | None = None) -> str:
        """TCP on 127.0.0.1: the superuser is trusted, any other user needs its password."""
        login = f"{user}:{password}" if password is not None else user
        return f"postgresql://{login}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        _run(self, [self.bin_dir / "pg_ctl", "stop", "-D", self.base_dir / "data", "-m",
                    "immediate", "-w"])
        shutil.rmtree(self.base_dir, ignore_errors=True)


def find_bin_dir() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                       key=lambda path: [int(n) for n in re.findall(r"\d+", path.parts[-3])])
    return installed[-1].parent if installed else None


def start_postgres() -> PostgresServer:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable("no PostgreSQL server (initdb) on PATH or in "
                                  "/usr/lib/postgresql/*/bin; install the postgresql package")
    run_as = _unprivileged_user() if os.geteuid() == 0 else None
    server = PostgresServer(bin_dir, Path(tempfile.mkdtemp(prefix="fes-pg-")), _free_port(),
                            run_as)
    if run_as is not None:
        os.chown(server.base_dir, run_as.pw_uid, run_as.pw_gid)
    data = server.base_dir / "data"
    try:
        _run(server, [bin_dir / "initdb", "-D", data, "-U", SUPERUSER, "-E", "UTF8",
                      "--no-locale", "--auth=trust", "--no-sync"])
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nport = {server.port}\n"
                       f"unix_socket_directories = '{server.base_dir}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        (data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all {SUPERUSER} 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n")
        _run(server, [bin_dir / "pg_ctl", "start", "-D", data, "-l", server.base_dir / "log",
                      "-w", "-t", str(START_TIMEOUT_S)])
    except (OSError, subprocess.SubprocessError) as exc:
        log = server.base_dir / "log"
        detail = log.read_text(errors="replace")[-500:] if log.exists() else ""
        shutil.rmtree(server.base_dir, ignore_errors=True)
        raise PostgresUnavailable(f"PostgreSQL from {bin_dir} did not start: "
                                  f"{_said(exc)} {detail}".strip()) from None
    return server


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable("running as root, and no postgres or nobody user to run "
                              "PostgreSQL as (it refuses to run as root)")


def _run(server: PostgresServer, command: list[Path | str]) -> None:
    """A server command, as the unprivileged user when the tests run as root."""
    who = server.run_as
    subprocess.run(command, cwd=server.base_dir, check=True, capture_output=True, text=True,
                   timeout=START_TIMEOUT_S + 30,
                   user=who.pw_uid if who else None, group=who.pw_gid if who else None,
                   extra_groups=[] if who else None)


def _said(exc: BaseException) -> str:
    """What a failed command printed, or the error itself."""
    if isinstance(exc, subprocess.CalledProcessError):
        return " ".join(f"{exc.stderr or ''} {exc.stdout or ''}".split())[-500:]
    return str(exc)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
