"""A PostgreSQL for the store tests: the server in $TENKU_TEST_PG_DSN (default: the one
`bash .ci/postgres` starts), a fresh schema per test so tests never see each other's rows.
Without a reachable server the PostgreSQL cases skip, saying why; with $TENKU_REQUIRE_PG
(set by .ci/run) they fail instead, so CI cannot pass without running them."""

import contextlib
import os
import re
import uuid

import pytest

DEFAULT_DSN = "postgresql://tenku:tenku@127.0.0.1:5432/tenku_test"
_reachable: dict[str, str | None] = {}


def server_dsn() -> str:
    """The server's DSN, or skip (fail under $TENKU_REQUIRE_PG) when none answers."""
    dsn = os.environ.get("TENKU_TEST_PG_DSN") or DEFAULT_DSN
    if dsn not in _reachable:
        try:
            import psycopg

            psycopg.connect(dsn, connect_timeout=3).close()
            _reachable[dsn] = None
        except Exception as e:  # noqa: BLE001 - any reason is a reason to skip
            _reachable[dsn] = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    why = _reachable[dsn]
    if why is not None:
        shown = re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", dsn)
        msg = f"no PostgreSQL at {shown} ({why}); `bash .ci/postgres` starts one, or set TENKU_TEST_PG_DSN"
        if os.environ.get("TENKU_REQUIRE_PG"):
            pytest.fail(msg)
        pytest.skip(msg)
    return dsn


@contextlib.contextmanager
def fresh_schema():
    """A DSN whose search_path is a new, empty schema (dropped afterwards)."""
    import psycopg

    base = server_dsn()
    schema = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_dsn():
    with fresh_schema() as dsn:
        yield dsn


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request):
    """None (the SQLite store in the data dir) or a PostgreSQL DSN: a test taking this runs on both."""
    if request.param == "sqlite":
        yield None
    else:
        yield request.getfixturevalue("pg_dsn")
