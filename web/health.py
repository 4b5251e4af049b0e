"""GET /healthz: is the process up and the database reachable."""

from flask import Blueprint, jsonify
from peewee import PeeweeException

import ledger

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Answer 200 when the database answers, 503 otherwise."""
    try:
        ledger.db.execute_sql("SELECT 1").fetchone()
    except (PeeweeException, OSError) as exc:
        return jsonify(status="error", database="unreachable", error=type(exc).__name__), 503
    return jsonify(status="ok", database="ok")
