"""alembic's environment for the service's database: run by ``Store.migrate`` with the store's
own connection (``config.attributes["connection"]``); no ``alembic.ini`` is needed."""

from __future__ import annotations

from alembic import context

from hub_ext.service.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
