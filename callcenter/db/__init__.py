"""Database adapter: SQLAlchemy 2 (async) on SQLite by default, PostgreSQL by URL; Alembic migrations."""
from callcenter.db.base import Base, UTCDateTime, create_engine, make_sessionmaker, migrate

__all__ = ["Base", "UTCDateTime", "create_engine", "make_sessionmaker", "migrate"]
