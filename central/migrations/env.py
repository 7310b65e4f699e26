"""Alembic environment: runs on the connection :func:`central.db.migrate` passes."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import central.complaints.models
import central.guidance.models
import central.models
import central.ota.models
import central.plates.models
import central.police.models
import central.signals.models  # noqa: F401

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
