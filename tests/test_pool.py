"""A served app keeps its database connections in a pool: requests on many threads share a few
connections, each still set up as a fresh one would be."""

import os
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import psycopg
import pytest

import ledger
from web import create_app


def test_requests_on_many_threads_share_a_few_pooled_connections(db_url):
    app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "k", "TESTING": True, "DATABASE_POOL": True})
    seen, settings = {}, set()  # connections kept alive here, so that no id is reused

    @app.before_request
    def note_connection():
        connection = ledger.db.connection()
        seen[id(connection)] = connection
        if ledger.is_sqlite():
            settings.add(tuple(connection.execute(f"PRAGMA {name}").fetchone()[0]
                               for name in ("journal_mode", "foreign_keys", "recursive_triggers", "busy_timeout")))

    def get(_):
        return app.test_client().get("/healthz").status_code

    try:
        with ThreadPoolExecutor(max_workers=6) as threads:
            statuses = list(threads.map(get, range(120)))
        assert statuses == [200] * 120
        assert 1 <= len(seen) <= 6  # one per thread at most, not one per request
        if ledger.is_sqlite():
            assert settings == {("wal", 1, 1, 30_000)}
    finally:
        ledger.db.obj.close_all()


PG_URL = os.environ.get("TEST_DATABASE_URL")


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL ends sessions; SQLite has none")
def test_a_pooled_connection_whose_session_the_server_ended_is_replaced_not_handed_out(db_url):
    app = create_app({"DATABASE_URL": db_url, "SECRET_KEY": "k", "TESTING": True, "DATABASE_POOL": True})
    client = app.test_client()
    try:
        assert client.get("/healthz").status_code == 200  # its connection goes back to the pool
        database = urlsplit(db_url).path.lstrip("/")
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            ended = admin.execute("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                                  "WHERE datname = %s AND pid <> pg_backend_pid()", (database,)).fetchall()
        assert ended == [(True,)]
        assert client.get("/healthz").status_code == 200
    finally:
        ledger.db.obj.close_all()
