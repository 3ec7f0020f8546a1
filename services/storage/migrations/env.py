"""Alembic's environment for drgwatch's schema, run by services/storage/schema.py.

That module opens the connection (in one transaction, under the schema lock) and hands
it over in `config.attributes["connection"]`; there is no alembic.ini. Use
`drgwatch db upgrade|current|downgrade`, not the `alembic` command.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from services.storage.models import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "drgwatch's migrations run through `drgwatch db upgrade|downgrade`"
        " (services/storage/schema.py), which passes the connection in"
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite alters little in place: batch operations rebuild the table instead
    render_as_batch=connection.dialect.name == "sqlite",
    # types in drafted revisions render as `ExactDecimal(...)`, imported by the template
    user_module_prefix="",
)
with context.begin_transaction():  # the caller's transaction: nothing is committed here
    context.run_migrations()
