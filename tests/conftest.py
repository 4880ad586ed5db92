"""Shared fixtures: settings, a migrated database (SQLite, and PostgreSQL when asked), Redis.

Tests never touch data they did not create: PostgreSQL tests run in a database made for the
test session and dropped after it; Redis tests use a key prefix of their own and delete only
keys under it.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from callcenter.clock import ManualClock
from callcenter.config import Settings, load_settings
from callcenter.db import create_engine, make_sessionmaker, migrate

POSTGRES_ADMIN_URL = os.environ.get("CALLCENTER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CALLCENTER_TEST_REDIS", "redis://127.0.0.1:6379/0")

# The real Asterisk's fixtures (rig, sipp, hotline ...), one registration for every folder.
pytest_plugins = ["tests.real_hotline"]


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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Parametrised: every test that uses it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def db_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty database (PostgreSQL: emptied again after the test)."""
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
