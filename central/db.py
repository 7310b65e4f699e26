"""Database engines and migrations.

SQLite (WAL) by default, PostgreSQL by URL, the same code for both. Engines
are built by the caller from settings and passed down; nothing is created at
import time. Queries live with their services, not here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:  # noqa: ANN401
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # durable across a crash of the process
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str, *, schema: str | None = None) -> sa.Engine:
    """Build an engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://``).

    Args:
        url: the SQLAlchemy URL.
        schema: a PostgreSQL schema to put first on the search path (tests).
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10}
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if schema is not None:
        connect_args["options"] = f"-csearch_path={schema}"
    return sa.create_engine(
        url,
        connect_args=connect_args,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
    )


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    logger.info("Database migrated to %s", revision)
