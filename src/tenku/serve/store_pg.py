"""The PostgreSQL job store (``--store postgresql://...``): the same rows and SQL as the SQLite
one (store.py), shared by any number of API processes and ``tenku worker`` processes on other
machines. ``claim`` locks the row it takes with ``FOR UPDATE SKIP LOCKED``, so concurrent
workers each get a different job without waiting on each other; leases use the database's clock.
Needs ``pip install "tenku[postgres]"`` (psycopg 3).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tenku.serve.store import LEASE_S, Store, migrate


class PgStore(Store):
    """Jobs in PostgreSQL at ``dsn``; files in ``data_dir`` (a folder every process can reach:
    a shared mount). One autocommit connection behind a lock, as the SQLite store: every
    statement is short; a connection the server dropped is opened again once per statement."""

    NOW = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"
    LOCK = "FOR UPDATE SKIP LOCKED"
    exclusive = False

    def __init__(self, dsn: str, data_dir: str | Path, max_attempts: int = 2, lease_s: float = LEASE_S):
        try:
            import psycopg
        except ImportError:
            raise ValueError('--store postgresql://...: needs psycopg 3 (pip install "tenku[postgres]")') from None
        super().__init__(data_dir, max_attempts, lease_s)
        self.dsn, self._psycopg = dsn, psycopg
        self._lock = threading.Lock()
        try:
            self._conn = self._connect()
        except psycopg.Error as e:
            raise ValueError(f"--store: cannot connect to PostgreSQL: {str(e).strip().splitlines()[0]}") from None
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        migrate(create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn), poolclass=NullPool))

    def _connect(self) -> Any:
        from psycopg.rows import dict_row

        return self._psycopg.connect(self.dsn, autocommit=True, row_factory=dict_row, connect_timeout=10)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _run(self, sql: str, args: tuple) -> Any:
        sql = sql.replace("?", "%s")  # the shared SQL uses sqlite's placeholders; none has a literal ?
        with self._lock:
            for attempt in (0, 1):
                try:
                    cur = self._conn.execute(sql, args)
                    return cur.fetchall() if cur.description else cur.rowcount
                except self._psycopg.OperationalError:
                    if attempt or not self._conn.broken:
                        raise
                    self._conn = self._connect()  # the server restarted or dropped us: once more

    def _q(self, sql: str, args: tuple = ()) -> list[dict[str, Any]]:
        return self._run(sql, args)

    def _w(self, sql: str, args: tuple = ()) -> int:
        return self._run(sql, args)
