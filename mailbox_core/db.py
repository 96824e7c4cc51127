"""Engine creation, SQLite pragmas and schema migrations (Alembic)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError

from mailbox_core import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from mailbox_core.crypto import make_private_dir
from mailbox_core.errors import ConfigurationError, StorageError


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigurationError(f"MAILBOX_DATABASE_URL is not a database URL: {exc}") from exc
    if parsed.drivername in {"postgresql", "postgres"}:
        # SQLAlchemy's default PostgreSQL driver is psycopg2; this project ships psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed.render_as_string(hide_password=False), parsed.database)
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except ImportError as exc:
        raise ConfigurationError(f"No driver for {parsed.drivername}: {exc}") from exc
    except ArgumentError as exc:  # NoSuchModuleError: a dialect SQLAlchemy does not know
        raise ConfigurationError(
            f"MAILBOX_DATABASE_URL names a database this app cannot use ({parsed.drivername}): "
            "use sqlite:///path/to/file.db or postgresql://user@host/database."
        ) from exc


def _sqlite_engine(url: str, database: str | None) -> Engine:
    if database and database != ":memory:" and not database.startswith("file:"):
        make_private_dir(Path(database).parent)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


MIGRATIONS = Path(__file__).parent / "migrations"


def init_db(engine: Engine) -> None:
    """Bring the database to the newest schema (creating it when empty)."""
    upgrade(engine, "head")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run Alembic migrations up to ``revision`` in one transaction."""
    try:
        with engine.begin() as connection:
            config = _alembic_config(connection)
            if _created_before_migrations(connection):
                # Databases made by create_all before migrations existed hold revision 0001.
                command.stamp(config, "0001")
            command.upgrade(config, revision)
    except (OperationalError, ProgrammingError) as exc:
        raise StorageError(
            f"Could not open the database at {describe(engine)}: {_first_line(exc)}"
        ) from exc


def head_revision() -> str | None:
    """The newest revision this code knows (what ``upgrade`` brings a database to)."""
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _created_before_migrations(connection: Connection) -> bool:
    tables = set(inspect(connection).get_table_names())
    return "mailbox" in tables and "alembic_version" not in tables


def describe(engine: Engine) -> str:
    """The engine's URL without its password, for messages."""
    return engine.url.render_as_string(hide_password=True)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
