"""Shared fixtures: settings, a migrated database (SQLite, and PostgreSQL when asked), Redis.

Tests never touch data they did not create: PostgreSQL tests run in a database made for the
test session and dropped after it; Redis tests use a key prefix of their own and delete only
keys under it.
"""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from argon2 import PasswordHasher
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.clock import ManualClock
from callcenter.config import Settings, load_settings
from callcenter.db import create_engine, make_sessionmaker, migrate
from callcenter.db.base import migrate_sync
from callcenter.web import users

POSTGRES_ADMIN_URL = os.environ.get("CALLCENTER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CALLCENTER_TEST_REDIS", "redis://127.0.0.1:6379/0")

# The real Asterisk's fixtures (rig, sipp, hotline ...) and the browser's (chromium_browser, shots),
# one registration for every folder.
pytest_plugins = ["tests.real_hotline", "tests.browser"]

# Tests that share one thing of the machine run one after another on one worker when the suite
# runs in parallel (pytest-xdist, `--dist loadgroup`): the real Asterisk (one root, ports 5038
# and 5060, started once per worker by the `rig` fixture) and the Kannel gateway. Everything
# else makes its own database, Redis prefix, ports and folders, and runs on any worker.
SHARED_FIXTURES = {"rig": "asterisk", "gateway": "kannel"}


@pytest.hookimpl(tryfirst=True)   # before xdist's own hook reads the groups (it runs on each worker)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        group = next((g for fixture, g in SHARED_FIXTURES.items() if fixture in names), None)
        if group is None and item.get_closest_marker("asterisk"):
            group = "asterisk"
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True, scope="session")
def quick_password_hashes() -> Iterator[None]:
    """argon2 at its smallest cost in tests: a page test makes six users, and at the library's
    defaults (what the hotline runs) each hash takes a tenth of a second or more. Hashing,
    checking, the password pool and the limits behave the same at any cost."""
    real = users._hasher
    users._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    yield
    users._hasher = real


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        overrides={
            "paths": {"spool_dir": str(tmp_path / "spool"), "asterisk_config_dir": str(tmp_path / "asterisk")},
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"},
            "redis": {"url": REDIS_URL, "prefix": f"cctest:{uuid.uuid4().hex[:8]}:"},
            "web": {"secret_key": "test-secret-key-0123456789abcdef"},
            "ami": {"secret": "test-ami-secret"},
        }
    )


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A PostgreSQL database of its own (its URL), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_sync_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database made for this test session, dropped at the end."""
    with postgres_database("callcenter_test") as url:
        yield url


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database brought to the newest schema once per test session (by the same
    migrations `callcenter run` runs). Each test gets a copy: migrating from nothing takes a
    second or two, copying the file a millisecond."""
    path = tmp_path_factory.mktemp("migrated") / "migrated.db"
    migrate_sync(f"sqlite+aiosqlite:///{path}")
    return path


def _copied(database_url: str) -> bool:
    """A SQLite file copied from the migrated one (fresh_sqlite): nothing left to migrate."""
    prefix = "sqlite+aiosqlite:///"
    return database_url.startswith(prefix) and Path(database_url.removeprefix(prefix)).exists()


def fresh_sqlite(template: Path, path: Path) -> str:
    """A migrated, empty SQLite database at `path` (a copy of the session's), as a URL."""
    shutil.copyfile(template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Parametrised: every test that uses it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return fresh_sqlite(request.getfixturevalue("migrated_sqlite"), tmp_path / "test.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def db_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty database (PostgreSQL: emptied again after the test)."""
    if not _copied(database_url):
        await migrate(database_url)
    engine = create_engine(database_url)
    yield engine
    if engine.dialect.name == "postgresql":
        import callcenter.db.all_models  # noqa: F401
        from callcenter.db import Base

        async with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                await conn.execute(table.delete())
    await engine.dispose()


@pytest.fixture
def sessionmaker(db_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(db_engine)


@pytest.fixture
async def redis_client() -> AsyncIterator[tuple[aioredis.Redis, str]]:
    """A Redis client and a key prefix of this test's own; its keys are deleted afterwards."""
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = f"cctest:{uuid.uuid4().hex[:8]}:"
    yield client, prefix
    keys = [k async for k in client.scan_iter(match=prefix + "*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()
