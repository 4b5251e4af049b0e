"""The audit log: every staff action, written in the same transaction as the action."""

import json

from .models import AuditEvent


def record(staff, action, target="", detail=None, community=None):
    """Append who did what to which target."""
    return AuditEvent.create(
        staff=staff,
        action=action,
        target=target,
        detail=json.dumps(detail if detail is not None else {}, ensure_ascii=False, default=str),
        community=community if community is not None else getattr(staff, "community", None),
    )


def audit_log(limit=200, before=None, *, staff_id=None, action=None, start=None, end=None):
    """Return audit events, newest first, older than the `before` id: of one staff member, one
    action and the period [start, end) (naive UTC) where given."""
    query = AuditEvent.select().order_by(AuditEvent.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    if staff_id is not None:
        query = query.where(AuditEvent.staff == staff_id)
    if action:
        query = query.where(AuditEvent.action == action)
    if start is not None:
        query = query.where(AuditEvent.created_at >= start)
    if end is not None:
        query = query.where(AuditEvent.created_at < end)
    return list(query)
