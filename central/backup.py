"""Backup and restore of central: database rows, fleet CA, keys, audit log.

A backup is one ``.tar.gz``: ``db/<table>.jsonl`` with every row of every
table (so it restores into SQLite or PostgreSQL alike, after migrations),
``files/`` with the data directory's secrets (fleet CA, signing keys, JWT
secret) and a ``manifest.json`` with the schema revision and row counts.
Restore refuses a non-empty database: it is for a new or lost server.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import SQLModel

import central.complaints.models
import central.models
import central.ota.models
import central.plates.models
import central.police.models
import central.signals.models  # noqa: F401
from central.db import migrate
from central.errors import ConflictError

if TYPE_CHECKING:
    from pathlib import Path

FILES = ("ca", "audit-signing.key", "command-signing.key", "jwt-secret")


def _encode(value: Any) -> Any:  # noqa: ANN401 - a database value of any column type
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, bytes):
        return {"$b64": base64.b64encode(value).decode()}
    return value


def _decode(value: Any) -> Any:  # noqa: ANN401
    if isinstance(value, dict) and "$dt" in value:
        return datetime.fromisoformat(value["$dt"])
    if isinstance(value, dict) and "$b64" in value:
        return base64.b64decode(value["$b64"])
    return value


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def backup(engine: sa.Engine, data_dir: Path, out: Path) -> dict[str, int]:
    """Write a backup archive; return the row count per table."""
    counts: dict[str, int] = {}
    tables = SQLModel.metadata.sorted_tables
    with tarfile.open(out, "w:gz") as tar, engine.connect() as conn:
        with conn.begin():  # one snapshot for every table
            for table in tables:
                lines = [
                    json.dumps(
                        {k: _encode(v) for k, v in row.items()}, ensure_ascii=False
                    )
                    for row in conn.execute(sa.select(table)).mappings()
                ]
                counts[table.name] = len(lines)
                _add(tar, f"db/{table.name}.jsonl", "\n".join(lines).encode())
            revision = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            head = revision.scalar_one()
        for name in FILES:
            path = data_dir / name
            if path.exists():
                tar.add(path, arcname=f"files/{name}")
        manifest = {
            "revision": head,
            "tables": counts,
            "created": datetime.now(UTC).isoformat(),
        }
        _add(tar, "manifest.json", json.dumps(manifest, indent=2).encode())
    return counts


def restore(engine: sa.Engine, data_dir: Path, archive: Path) -> dict[str, int]:
    """Restore an archive into an empty database and data directory.

    Raises:
        ConflictError: the database already holds devices, events or audit records.
    """
    migrate(engine)
    tables = SQLModel.metadata.sorted_tables
    with engine.connect() as conn:
        for name in ("device", "event", "auditrecord"):
            if conn.execute(sa.text(f"SELECT COUNT(*) FROM {name}")).scalar_one():  # noqa: S608
                raise ConflictError(f"expected an empty database, {name} has rows")
    counts: dict[str, int] = {}
    with tarfile.open(archive, "r:gz") as tar:
        names = set(tar.getnames())
        with engine.begin() as conn:
            for table in tables:
                path = f"db/{table.name}.jsonl"  # absent: a backup made before it
                member = tar.extractfile(path) if path in names else None
                text = member.read().decode() if member is not None else ""
                rows = [
                    {k: _decode(v) for k, v in json.loads(line).items()}
                    for line in text.splitlines()
                    if line.strip()
                ]
                if rows:
                    conn.execute(table.insert(), rows)
                counts[table.name] = len(rows)
            if engine.dialect.name == "postgresql":
                _reset_sequences(conn, tables)
        data_dir.mkdir(parents=True, exist_ok=True)
        members = [m for m in tar.getmembers() if m.name.startswith("files/")]
        tar.extractall(data_dir, members=_strip(members), filter="data")
    return counts


def _strip(members: list[tarfile.TarInfo]) -> list[tarfile.TarInfo]:
    for member in members:
        member.name = member.name.removeprefix("files/")
    return members


def _reset_sequences(conn: sa.Connection, tables: list[sa.Table]) -> None:
    """Move PostgreSQL identity sequences past the restored ids."""
    for table in tables:
        for column in table.primary_key.columns:
            if (
                isinstance(column.type, sa.Integer)
                and column.autoincrement is not False
            ):
                # Names come from our own metadata, never from input.
                sequence = f"pg_get_serial_sequence('{table.name}', '{column.name}')"
                top = f"(SELECT MAX({column.name}) FROM {table.name})"  # noqa: S608
                query = f"SELECT setval({sequence}, COALESCE({top}, 0) + 1, false)"
                conn.execute(sa.text(query))
