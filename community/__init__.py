"""Linli's community: communities, residents, staff and roles, point rules, activities,
sign-ups, confirmation into points, the notices outbox and the audit log.

This package sits on `ledger` and imports nothing else from the project, nor flask, telegram
or twilio. Services take plain arguments (and the acting staff member, whose role they check),
own their transactions, write their audit events and notices in the same transaction as the
change, and raise the named errors in `community.errors`.
"""

from . import activities, audit, awards, cases, contacts, mediation, notices, people, rules
from .errors import CommunityError
from .models import (
    MODELS,
    Activity,
    AuditEvent,
    Case,
    CaseEvent,
    CaseKind,
    Community,
    Confirmation,
    Contact,
    Mediation,
    MediationSeat,
    Mediator,
    Notice,
    Photo,
    PointRule,
    Resident,
    Signup,
    Staff,
)

__all__ = [
    "MODELS", "Activity", "AuditEvent", "Case", "CaseEvent", "CaseKind", "Community", "CommunityError", "Contact",
    "Confirmation", "Mediation", "MediationSeat", "Mediator", "Notice", "Photo",
    "PointRule", "Resident", "Signup", "Staff", "activities", "audit", "awards", "cases", "contacts",
    "mediation", "notices", "people", "rules",
]
