"""A served app keeps its database connections in a pool: requests on many threads share a few
connections, each still set up as a fresh one would be."""

from concurrent.futures import ThreadPoolExecutor

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
