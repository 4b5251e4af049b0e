"""Mediation in the neighbour reasoning room (近邻评理室): appointed mediators — residents or staff
— settle disputes within 30 days; a mediator who is a party or related to one declares it and
steps aside. When the parties reach an agreement (written, or oral with its terms recorded), each
resident mediator who sat on it is awarded the mediation rule's points, once, citing the
mediation; staff mediators earn nothing for doing their job. A private mediation is seen only by
its community's coordinators and its staff mediators.
"""

import datetime
import json

import ledger
from ledger import Transfer, db
from ledger.models import utcnow

from .audit import record
from .errors import (
    FollowUpAfterOutcome,
    LastMediator,
    MediationClosed,
    MediationNeeds,
    MediatorIsAParty,
    NotPermitted,
    SelfConfirmation,
    TermsNeeded,
)
from .models import Mediation, MediationSeat, Mediator, Resident, Staff
from .people import authorize, can_act
from .rules import current_rule

LIMIT = datetime.timedelta(days=30)
RULE = "mediation"


def appoint(staff, community, *, resident=None, staff_member=None):
    """Appoint a resident or a staff member of the community as a mediator (again, if they were)."""
    authorize(staff, community, Staff.COORDINATOR)
    if (resident is None) == (staff_member is None):
        raise MediationNeeds()
    if resident is not None and resident.community_id != community.id:
        raise NotPermitted()
    if staff_member is not None and not can_act(staff_member, community, Staff.COORDINATOR, Staff.GRID_WORKER):
        raise NotPermitted()
    found = Mediator.get_or_none((Mediator.community == community.id) & (
        (Mediator.resident == resident.id) if resident else (Mediator.staff == staff_member.id)))
    with db.atomic():
        if found is None:
            found = Mediator.create(community=community.id, resident=resident, staff=staff_member, appointed_by=staff)
        else:
            Mediator.update(active=True).where(Mediator.id == found.id).execute()
        record(staff, "mediator.appoint", f"mediator:{found.id}", {"name": found.name()}, community=community)
    return Mediator.get_by_id(found.id)


def mediators_of(community):
    return list(Mediator.select().where((Mediator.community == community.id) & Mediator.active).order_by(Mediator.id))


def may_see(staff, mediation):
    """Coordinators of its community; its staff mediators; grid workers of the community unless private."""
    if can_act(staff, mediation.community, Staff.COORDINATOR):
        return True
    if _sits(staff, mediation):
        return True
    return not mediation.private and can_act(staff, mediation.community, Staff.GRID_WORKER)


def _sits(staff, mediation):
    """Whether `staff` is one of the mediation's mediators (and has not stepped aside)."""
    return MediationSeat.select().join(Mediator).where(
        (MediationSeat.mediation == mediation.id) & (Mediator.staff == staff.id)
        & ~MediationSeat.stepped_aside).exists()


def parties_of(mediation):
    return json.loads(mediation.parties)


def open_mediation(staff, community, summary, parties, mediator_ids, *, source="walk_in", case=None,
                   private=False, now=None):
    """Open a mediation. `parties`: names or residents (at least two), or the names as typed, one
    per line or separated by 、; `mediator_ids`: appointed mediators of the community (at least
    one), none of them a party."""
    now = now or utcnow()
    authorize(staff, community, Staff.COORDINATOR)
    summary = " ".join((summary or "").split())[:300]
    if isinstance(parties, str):
        parties = parties.replace("、", "\n").splitlines()
    named = []
    for party in parties:
        if isinstance(party, Resident):
            named.append({"name": party.display_name, "resident": party.id})
        elif " ".join(str(party or "").split()):
            named.append({"name": " ".join(str(party).split())[:60], "resident": None})
    chosen = [m for m in mediators_of(community) if m.id in set(mediator_ids)]
    if not summary or len(named) < 2 or not chosen or source not in Mediation.SOURCES:
        raise MediationNeeds()
    party_residents = {p["resident"] for p in named if p["resident"]}
    party_names = {p["name"] for p in named}
    if any(m.resident_id in party_residents or m.name() in party_names for m in chosen):
        raise MediatorIsAParty()
    with db.atomic():
        mediation = Mediation.create(community=community.id, source=source, case=case, summary=summary,
                                     parties=json.dumps(named, ensure_ascii=False), private=bool(private),
                                     due_at=now + LIMIT, created_by=staff, created_at=now)
        for mediator in chosen:
            MediationSeat.create(mediation=mediation.id, mediator=mediator.id)
        record(staff, "mediation.open", f"mediation:{mediation.id}", community=community)
    return mediation


def _open(mediation):
    mediation = Mediation.get_by_id(mediation.id)
    if mediation.state != Mediation.OPEN:
        raise MediationClosed()
    return mediation


def _authorize(staff, mediation):
    """Its community's coordinators and its sitting staff mediators act on a mediation."""
    if not (can_act(staff, mediation.community, Staff.COORDINATOR) or _sits(staff, mediation)):
        raise NotPermitted()


def step_aside(staff, mediation, seat, reason):
    """A mediator related to a party declares it and leaves this mediation."""
    _authorize(staff, mediation)
    mediation = _open(mediation)
    sitting = [s for s in mediation.seats if not s.stepped_aside]
    if seat.mediation_id != mediation.id or seat.stepped_aside:
        raise NotPermitted()
    if len(sitting) <= 1:
        raise LastMediator()
    with db.atomic():
        MediationSeat.update(stepped_aside=True, reason=" ".join((reason or "").split())[:200]).where(
            MediationSeat.id == seat.id).execute()
        record(staff, "mediation.step_aside", f"mediation:{mediation.id}", {"name": seat.mediator.name()},
               community=mediation.community)


def close(staff, mediation, outcome, *, terms="", carry_out_by=None, follow_up_on=None, now=None):
    """Record the outcome. An agreement (written or oral) needs its terms and earns each resident
    mediator who sat on it the mediation rule's points, once."""
    now = now or utcnow()
    _authorize(staff, mediation)
    mediation = _open(mediation)
    terms = " ".join((terms or "").split())[:500]
    if outcome not in Mediation.OUTCOMES:
        raise MediationNeeds()
    agreed = outcome in (Mediation.WRITTEN, Mediation.ORAL)
    if agreed and not terms:
        raise TermsNeeded()
    rule = current_rule(RULE)
    sitting = [s for s in mediation.seats if not s.stepped_aside]
    if staff.resident_id is not None and staff.resident_id in {s.mediator.resident_id for s in sitting}:
        raise SelfConfirmation()  # a coordinator who mediated as a resident: another coordinator closes it
    with db.atomic():
        changed = Mediation.update(state=Mediation.CLOSED, outcome=outcome, terms=terms, carry_out_by=carry_out_by,
                                   follow_up_on=follow_up_on, closed_at=now).where(
            (Mediation.id == mediation.id) & (Mediation.state == Mediation.OPEN)).execute()
        if not changed:
            raise MediationClosed()
        record(staff, "mediation.close", f"mediation:{mediation.id}", {"outcome": outcome},
               community=mediation.community)
        if agreed:
            for seat in sitting:
                if seat.mediator.resident_id is not None and seat.mediator.resident.status != Resident.CLOSED:
                    _award(mediation, seat, rule)
    return Mediation.get_by_id(mediation.id)


def _award(mediation, seat, rule):
    resident = seat.mediator.resident
    transfer = ledger.transfer(mediation.community.issuer_id, resident.account_id, rule.points, kind=Transfer.AWARD,
                               memo=f"{rule.category} v{rule.version}: mediation {mediation.id}", actor="mediation",
                               idempotency_key=f"award:mediation:{mediation.id}:{seat.id}")
    MediationSeat.update(transfer=transfer.id).where(MediationSeat.id == seat.id).execute()


def follow_up(staff, mediation, note, now=None):
    """The follow-up visit after the outcome, once: were the terms carried out?"""
    _authorize(staff, mediation)
    with db.atomic():
        note = " ".join((note or "").split())[:300]
        done = Mediation.update(followed_up_at=now or utcnow(), follow_up_note=note).where(
            (Mediation.id == mediation.id) & (Mediation.state == Mediation.CLOSED) & Mediation.followed_up_at.is_null()
        ).execute()
        if not done:
            raise FollowUpAfterOutcome()
        record(staff, "mediation.follow_up", f"mediation:{mediation.id}", community=mediation.community)
    return Mediation.get_by_id(mediation.id)


def late(mediation, now=None):
    return mediation.state == Mediation.OPEN and (now or utcnow()) > mediation.due_at


def visible(staff, communities):
    query = Mediation.select().where(Mediation.community.in_([c.id for c in communities])).order_by(
        Mediation.state.desc(), Mediation.due_at)
    return [m for m in query if may_see(staff, m)]
