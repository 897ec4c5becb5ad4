"""Alembic environment: runs on the connection handed over by ``liveroom.db.migrate``."""

from __future__ import annotations

from alembic import context

from liveroom.db import models  # noqa: F401  (registers the tables on the metadata)
from liveroom.db.base import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `liveroom db upgrade`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
