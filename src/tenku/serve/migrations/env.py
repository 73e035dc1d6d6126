"""alembic's environment for the job store: runs on the connection ``store.migrate`` hands over
(never a URL from alembic.ini), so the store and its migrations always name the same database."""

from alembic import context

conn = context.config.attributes["connection"]
context.configure(connection=conn, render_as_batch=conn.dialect.name == "sqlite")
with context.begin_transaction():
    if conn.dialect.name == "postgresql":
        # processes starting at once (API servers, workers) migrate one after another; the
        # others then find the schema at head. The lock ends with the transaction.
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7419)")
    context.run_migrations()
