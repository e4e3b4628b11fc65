"""Fixtures shared across test modules.

The serial drivers' tests: each module starts ``fes-sim`` with its own options in its own
``sim`` fixture; the IMU driver on that simulator, and how to wait out the bytes still in
flight, are shared. The clinic database: one PostgreSQL server for the whole run
(``tests/postgres_server.py``), a new empty database on it per test; skipped, saying why,
where no server can start.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from controller.devices.witmotion_imu import WitMotionImu
from tests.postgres_server import PostgresServer, PostgresUnavailable, start_postgres
from tests.sim_process import SimProcess, wait_for

DRAIN_QUIET_S = 0.1
DRAIN_WAIT_S = 2.0


@pytest.fixture
def imu(sim: SimProcess) -> Iterator[WitMotionImu]:
    driver = WitMotionImu(sim.imu)
    try:
        yield driver
    finally:
        driver.close()


def drain(imu: WitMotionImu) -> None:
    """Read until nothing more arrives for a while: after a stall is commanded, samples
    already written (in the pty, or mid-packet) still come, and must not count as
    stream after the stall."""
    wait_for(lambda: not (imu.wait_for_samples(DRAIN_QUIET_S) and imu.read()), DRAIN_WAIT_S)


_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture
def clinic_url(postgres: PostgresServer) -> str:
    """A new, empty database on the test server for each test."""
    name = f"clinic_{next(_databases)}"
    with psycopg.connect(postgres.url(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return postgres.url(name)
