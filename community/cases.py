"""Every matter answered (事事有回音): what a resident reports reaches their grid worker (else the
community's coordinators), each step has a time limit, and the reporter hears of every step in
one short message. A case is closed only when the fix is verified — by the reporter's `1` (已解决)
or by staff — and only then may it earn the reporter points: the first reporter of a set of
duplicates, within a monthly cap, citing the case. Staff earn nothing for doing their job.

Steps: received → accepted → handled (waiting for verification) → closed; "not solved" reopens
it (back to accepted); it may instead be refused with a reason, or merged into an earlier case
(its reporter then follows that one). A step past its time limit is yellow; past twice its limit,
red, and it shows in the coordinators' overdue list whoever holds it.
"""

import datetime
import io
from dataclasses import dataclass

from PIL import Image, ImageOps

import ledger
from ledger import Transfer, db
from ledger.models import from_local, to_local, utcnow

from . import notices
from .audit import record
from .errors import (
    CaseNotFound,
    CaseNotOpen,
    CaseWrongStep,
    CheckedBySomeoneElse,
    InvalidInput,
    KindLimits,
    KindNameNeeded,
    KindNameTaken,
    KindNotOffered,
    LastKind,
    NotAnEarlierCase,
    NotAPhoto,
    NotPermitted,
    ReasonNeeded,
    ReportTooLong,
    SayWhatWasDone,
    TooManyKinds,
)
from .models import Case, CaseEvent, CaseKind, Community, Photo, Resident, Staff
from .people import authorize, can_act, ensure_active, grid_of, in_reach, visible_communities

HOUR = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class Category:
    code: str
    name_zh: str
    name_en: str
    accept: datetime.timedelta  # to accept (or refuse) a new report
    handle: datetime.timedelta  # to fix it once accepted
    verify: datetime.timedelta  # for the reporter (or staff) to confirm the fix
    points: int  # hundredths, to the first reporter once the fix is verified
    handler_id: int | None = None  # who takes its reports first (None: the reporter's grid worker)
    active: bool = True

    def name(self, language):
        return (self.name_en or self.name_zh) if language == "en" else self.name_zh


#: The kinds a community offers until its coordinators set their own (1 安全隐患 …).
CATEGORIES = (
    Category("hazard", "安全隐患", "Safety hazard", 2 * HOUR, 24 * HOUR, 48 * HOUR, 50),
    Category("environment", "环境卫生", "Environment", 4 * HOUR, 48 * HOUR, 48 * HOUR, 20),
    Category("facilities", "设施维修", "Facilities", 4 * HOUR, 72 * HOUR, 48 * HOUR, 20),
    Category("dispute", "邻里纠纷", "Neighbour dispute", 4 * HOUR, 72 * HOUR, 72 * HOUR, 0),
    Category("other", "其他", "Other", 8 * HOUR, 120 * HOUR, 72 * HOUR, 0),
)
BY_CODE = {c.code: c for c in CATEGORIES}
#: Report points one resident may earn in a calendar month (hundredths).
MONTHLY_CAP = 200
MAX_TEXT = 300
#: Kinds offered at once: a resident picks one with a single digit.
MAX_KINDS = 9
MAX_HOURS = 30 * 24
MAX_KIND_POINTS = 500
#: Photos kept with one report.
MAX_PHOTOS = 3
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTO_PIXELS = 40_000_000
PHOTO_SIDE = 1280


def _kind(row):
    return Category(row.code, row.name_zh, row.name_en, row.accept_hours * HOUR, row.handle_hours * HOUR,
                    row.verify_hours * HOUR, row.points, row.handler_id, row.active)


def categories(community, everything=False):
    """The kinds a community's residents pick from, in order (with `everything`, those no longer
    offered too): its own, or the default ones."""
    rows = CaseKind.select().where(CaseKind.community == community).order_by(CaseKind.position, CaseKind.id)
    own = [_kind(r) for r in rows if everything or r.active]
    return own or ([] if rows.exists() else list(CATEGORIES))


def kinds_for(communities):
    """A function from a case to its kind, for many cases of these communities (one query)."""
    ids = [getattr(c, "id", c) for c in communities]
    own = {(r.community_id, r.code): _kind(r) for r in CaseKind.select().where(CaseKind.community.in_(ids))}

    def kind(case):
        return own.get((case.community_id, case.category)) or BY_CODE.get(case.category) or CATEGORIES[-1]

    return kind


def names(communities, language):
    """{code: name} of every kind these communities offer or offered, in order (a community's own
    name for a default kind before the default one)."""
    ids = [getattr(c, "id", c) for c in communities]
    rows = CaseKind.select().where(CaseKind.community.in_(ids)).order_by(CaseKind.position, CaseKind.id)
    own = {}
    for row in rows:
        own.setdefault(row.code, _kind(row).name(language))
    return {**own, **{c.code: c.name(language) for c in CATEGORIES if c.code not in own}}


def category(code, community):
    """The kind `code` of a community (offered or no longer offered)."""
    row = CaseKind.get_or_none((CaseKind.community == community) & (CaseKind.code == code))
    if row is not None:
        return _kind(row)
    if code not in BY_CODE or CaseKind.select().where(CaseKind.community == community).exists():
        raise KindNotOffered()
    return BY_CODE[code]


def save_kind(staff, community, code, *, name_zh, name_en="", accept_hours, handle_hours, verify_hours,
              points, handler_id=None, active=True):
    """Set one of a community's kinds of problem (code "" adds one). The first change copies the
    default kinds, so the community keeps the others; cases keep the kind they were filed under."""
    authorize(staff, community, Staff.COORDINATOR)
    name_zh, name_en = " ".join((name_zh or "").split()), " ".join((name_en or "").split())
    hours = (accept_hours, handle_hours, verify_hours)
    if not name_zh or len(name_zh) > 8 or len(name_en) > 30:
        raise KindNameNeeded()
    if not all(isinstance(h, int) and 1 <= h <= MAX_HOURS for h in hours) or not 0 <= points <= MAX_KIND_POINTS:
        raise KindLimits()
    handler = None
    if handler_id not in (None, ""):
        handler = next((s for s in colleagues_in(community) if str(s.id) == str(handler_id)), None)
        if handler is None:
            raise NotPermitted()
    with db.atomic():
        # Hold the community's row: two coordinators saving at once take turns.
        Community.update(code=Community.code).where(Community.id == community.id).execute()
        if not CaseKind.select().where(CaseKind.community == community.id).exists():
            for position, kind in enumerate(CATEGORIES, 1):
                CaseKind.create(community=community.id, code=kind.code, position=position, name_zh=kind.name_zh,
                                name_en=kind.name_en, accept_hours=hours_of(kind.accept),
                                handle_hours=hours_of(kind.handle), verify_hours=hours_of(kind.verify),
                                points=kind.points)
        kinds = list(CaseKind.select().where(CaseKind.community == community.id))
        row = next((k for k in kinds if k.code == code), None) if code else None
        if code and row is None:
            raise InvalidInput("unknown category")
        offered = [k for k in kinds if k.active and k is not row]
        if active and len(offered) >= MAX_KINDS:
            raise TooManyKinds()
        if not active and not offered:
            raise LastKind()
        if any(k.name_zh == name_zh for k in kinds if k is not row):
            raise KindNameTaken()
        values = dict(name_zh=name_zh, name_en=name_en, accept_hours=accept_hours, handle_hours=handle_hours,
                      verify_hours=verify_hours, points=points, handler=handler, active=bool(active),
                      updated_at=utcnow())
        if row is None:
            row = CaseKind.create(community=community.id, code=f"k{max(k.id for k in kinds) + 1}",
                                  position=max(k.position for k in kinds) + 1, **values)
        else:
            CaseKind.update(**values).where(CaseKind.id == row.id).execute()
        record(staff, "case.kind", f"community:{community.id}",
               {"name": name_zh, "hours": "/".join(map(str, hours)), "points": points,
                "handler": (handler.display_name or handler.username) if handler else "",
                "active": bool(active)}, community=community)
    return CaseKind.get_by_id(row.id)


def case_number(text):
    """The case number in what was typed (ASCII digits, at most 9), or None."""
    text = str(text or "").strip().lstrip("#")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def get_case(number):
    number = case_number(number)
    case = Case.by_id(number) if number is not None else None
    if case is None:
        raise CaseNotFound()
    return case


def grid_worker_for(resident):
    """The active grid worker (or unit head) of the resident's grid, or None."""
    if not resident.grid_label:
        return None
    grids = Community.select(Community.id).where(
        (Community.parent == resident.community_id) & (Community.level == Community.GRID)
        & ((Community.name_zh == resident.grid_label) | (Community.code == resident.grid_label)))
    units = Community.select(Community.id).where(Community.parent.in_(grids))
    return (Staff.select().where((Staff.role == Staff.GRID_WORKER) & Staff.active
                                 & (Staff.community.in_(grids) | Staff.community.in_(units)))
            .order_by(Staff.community, Staff.id).first())


def _event(case, action, now, staff=None, detail=""):
    """The step in the case's history (a staff member's step is also in the audit log)."""
    CaseEvent.create(case=case.id, action=action, staff=staff, detail=detail[:300], created_at=now)


def _tell(case, kind, own=None, reporter=True, **params):
    """One short message to the reporter (with `own` parameters for them alone; none when they
    are the one who just answered), and to the reporters of cases merged into this one."""
    if reporter:
        notices.queue_notice(kind, case.reporter_id, case=case.id, **params, **(own or {}))
    followers = {c.reporter_id for c in Case.select(Case.reporter).where(
        (Case.duplicate_of == case.id) & (Case.state == Case.MERGED))} - {case.reporter_id}
    for resident_id in sorted(followers):
        notices.queue_notice(kind, resident_id, case=case.id, **params)


def keep_photo(resident, data):
    """Keep a photo a resident sent for the report they are making, re-encoded as a JPEG of at
    most 1280 pixels a side (which also drops where it was taken); return its id."""
    if not data or len(data) > MAX_PHOTO_BYTES:
        raise NotAPhoto()
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG", "PNG", "WEBP")) as image:
            if image.width * image.height > MAX_PHOTO_PIXELS:
                raise NotAPhoto()
            picture = ImageOps.exif_transpose(image).convert("RGB")
            picture.thumbnail((PHOTO_SIDE, PHOTO_SIDE))
            out = io.BytesIO()
            picture.save(out, "JPEG", quality=80)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise NotAPhoto() from None
    return Photo.create(resident=resident.id, data=out.getvalue()).id


def first_handler(kind, resident):
    """Who takes a new report first: the kind's own handler while active, else the reporter's
    grid worker (None: the coordinators)."""
    handler = Staff.get_or_none((Staff.id == kind.handler_id) & Staff.active) if kind.handler_id else None
    return handler or grid_worker_for(resident)


def report(resident, category_code, text, *, place="", staff=None, photos=(), now=None):
    """Record what a resident reports (by SMS, Telegram, or staff writing it down), with the
    photos they sent for it; return the case."""
    now = now or utcnow()
    ensure_active(resident)
    kind = category(category_code, resident.community_id)
    if not kind.active:
        raise KindNotOffered()
    text = " ".join((text or "").split())
    if not text or len(text) > MAX_TEXT or not text.isprintable():
        raise ReportTooLong()
    if staff is not None:
        authorize(staff, resident.community, Staff.COORDINATOR, Staff.GRID_WORKER)
        if not in_reach(staff, resident):
            raise NotPermitted()
    place = " ".join((place or "").split())[:80] or " ".join(
        p for p in (resident.grid_label, resident.unit_label) if p)
    with db.atomic():
        case = Case.create(community=resident.community_id, reporter=resident.id, reported_by=staff,
                           category=kind.code, text=text, place=place, assignee=first_handler(kind, resident),
                           due_at=now + kind.accept, step_started_at=now, created_at=now)
        if photos:
            Photo.update(case=case.id).where(Photo.id.in_(list(photos)[:MAX_PHOTOS]) & (Photo.resident == resident.id)
                                             & Photo.case.is_null()).execute()
        _event(case, "report", now, staff, text)
        if staff is not None:  # the resident did not write it themselves: tell them its number
            record(staff, "case.report", f"case:{case.id}", community=case.community)
            _tell(case, notices.CASE_RECEIVED, hours=hours_of(kind.accept))
    return case


def hours_of(delta):
    return max(1, int(delta.total_seconds() // 3600))


def may_handle(staff, case):
    """Coordinators of the case's community, and the grid worker it is assigned to (or whose grid
    its reporter lives in)."""
    if can_act(staff, case.community, Staff.COORDINATOR):
        return True
    return staff.role == Staff.GRID_WORKER and (
        case.assignee_id == staff.id or (grid_of(staff) is not None and in_reach(staff, case.reporter)))


def _authorize(staff, case):
    if not may_handle(staff, case):
        raise NotPermitted()


def _step(case, state, expected, now, **values):
    """Move an open case from one of `expected` states to `state`; refuse if someone moved it first."""
    if case.state not in Case.OPEN:
        raise CaseNotOpen()
    changed = Case.update(state=state, **values).where((Case.id == case.id) & Case.state.in_(expected)).execute()
    if not changed:
        raise CaseWrongStep()
    return Case.get_by_id(case.id)


def accept(staff, case, now=None):
    """Take the case on: it is now the accepting staff member's, to handle within its limit."""
    now = now or utcnow()
    _authorize(staff, case)
    kind = category(case.category, case.community_id)
    with db.atomic():
        case = _step(case, Case.ACCEPTED, (Case.RECEIVED,), now, assignee=staff.id, due_at=now + kind.handle,
                     step_started_at=now)
        _event(case, "accept", now, staff)
        record(staff, "case.accept", f"case:{case.id}", community=case.community)
        _tell(case, notices.CASE_ACCEPTED, hours=hours_of(kind.handle))
    return case


def handled(staff, case, what, now=None):
    """The fix is done: the reporter is asked whether it is solved (1 已解决 2 未解决)."""
    now = now or utcnow()
    _authorize(staff, case)
    what = " ".join((what or "").split())[:300]
    if not what:
        raise SayWhatWasDone()
    kind = category(case.category, case.community_id)
    with db.atomic():
        case = _step(case, Case.HANDLED, (Case.RECEIVED, Case.ACCEPTED), now, reason=what,
                     assignee=case.assignee_id or staff.id, due_at=now + kind.verify, step_started_at=now)
        _event(case, "handled", now, staff, what)
        record(staff, "case.handled", f"case:{case.id}", {"detail": what}, community=case.community)
        _tell(case, notices.CASE_HANDLED, own={"ask": True}, title=what)  # only its reporter is asked
    return case


def verify(case, solved, *, staff=None, resident=None, now=None, zone=None):
    """The reporter's answer (or staff's check): solved closes the case and may earn the reporter
    points; not solved reopens it. Staff check a fix someone else made, and never their own
    report; the reporter, who just answered, gets no second message."""
    now = now or utcnow()
    if staff is not None:
        _authorize(staff, case)
        handler = (CaseEvent.select(CaseEvent.staff)
                   .where((CaseEvent.case == case.id) & (CaseEvent.action == "handled"))
                   .order_by(CaseEvent.id.desc()).first())
        if staff.resident_id == case.reporter_id or (handler is not None and handler.staff_id == staff.id):
            raise CheckedBySomeoneElse()
    elif resident is None or resident.id != case.reporter_id:
        raise NotPermitted()
    tell = {} if staff is not None else {"reporter": False}
    kind = category(case.category, case.community_id)
    with db.atomic():
        if not solved:
            case = _step(case, Case.ACCEPTED, (Case.HANDLED,), now, due_at=now + kind.handle, step_started_at=now,
                         reopened=Case.reopened + 1)
            _event(case, "reopen", now, staff)
            if staff is not None:
                record(staff, "case.reopen", f"case:{case.id}", community=case.community)
            _tell(case, notices.CASE_REOPENED, hours=hours_of(kind.handle), **tell)
            return case
        case = _step(case, Case.CLOSED, (Case.HANDLED,), now, closed_at=now)
        _event(case, "close", now, staff)
        if staff is not None:
            record(staff, "case.close", f"case:{case.id}", community=case.community)
        points = _award(case, kind, now, zone)
        reporter = Resident.get_by_id(case.reporter_id)
        _tell(case, notices.CASE_CLOSED, own={"points": points, "balance": ledger.balance(reporter.account_id)},
              **tell)
    return Case.get_by_id(case.id)


def _award(case, kind, now, zone=None):
    """The reporter's points for a verified fix: once, within the month's cap (the community's
    calendar month); 0 when none, or when the reporter's account is closed."""
    reporter = Resident.get_by_id(case.reporter_id)
    if kind.points <= 0 or reporter.status == Resident.CLOSED:
        return 0
    # Hold the reporter's row: two of their cases closed at once count each other against the cap.
    Resident.update(status=Resident.status).where(Resident.id == reporter.id).execute()
    local = to_local(now, zone) if zone else now
    month = from_local(local.replace(day=1, hour=0, minute=0, second=0, microsecond=0), zone) if zone else (
        local.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
    earned = sum(c.points for c in Case.select(Case.points).where(
        (Case.reporter == case.reporter_id) & (Case.closed_at >= month) & (Case.id != case.id)))
    points = min(kind.points, MONTHLY_CAP - earned)
    if points <= 0:
        return 0
    transfer = ledger.transfer(case.community.issuer_id, reporter.account_id, points, kind=Transfer.AWARD,
                               memo=f"case {case.id}: {case.text}"[:500], actor="case",
                               idempotency_key=f"award:case:{case.id}")
    Case.update(points=points, transfer=transfer.id).where(Case.id == case.id).execute()
    return points


def refuse(staff, case, reason, now=None):
    """Not a matter for the community (or not one at all): the reporter hears why."""
    now = now or utcnow()
    _authorize(staff, case)
    reason = " ".join((reason or "").split())[:300]
    if not reason:
        raise ReasonNeeded()
    with db.atomic():
        case = _step(case, Case.REFUSED, Case.OPEN, now, reason=reason, closed_at=now)
        _event(case, "refuse", now, staff, reason)
        record(staff, "case.refuse", f"case:{case.id}", {"detail": reason}, community=case.community)
        _tell(case, notices.CASE_REFUSED, reason=reason)
    return case


def merge(staff, case, original_number, now=None):
    """The same matter as an earlier open case: the reporter follows that one from now on."""
    now = now or utcnow()
    _authorize(staff, case)
    try:
        original = get_case(original_number)
    except CaseNotFound:
        raise NotAnEarlierCase() from None
    if original.id >= case.id or original.community_id != case.community_id or original.state not in Case.OPEN:
        raise NotAnEarlierCase()  # the first report stays the one that counts
    with db.atomic():
        case = _step(case, Case.MERGED, Case.OPEN, now, duplicate_of=original.id, closed_at=now)
        # Those who followed this case now follow the original.
        Case.update(duplicate_of=original.id).where(
            (Case.duplicate_of == case.id) & (Case.state == Case.MERGED)).execute()
        _event(case, "merge", now, staff, f"#{original.id}")
        record(staff, "case.merge", f"case:{case.id}", {"detail": f"#{original.id}"}, community=case.community)
        notices.queue_notice(notices.CASE_MERGED, case.reporter_id, case=case.id, original=original.id)
    return case


def colleagues_in(community):
    """Who may take a community's cases: its active coordinators and grid workers."""
    return [s for s in Staff.select().where(Staff.active & Staff.role.in_((Staff.COORDINATOR, Staff.GRID_WORKER)))
            .order_by(Staff.username) if can_act(s, community, Staff.COORDINATOR, Staff.GRID_WORKER)]


def colleagues(case):
    """Who a case can be handed to."""
    return colleagues_in(case.community)


def transfer_case(staff, case, to_staff_id, now=None):
    """Hand an open case to a colleague (another grid's worker, a coordinator): it is theirs now."""
    now = now or utcnow()
    _authorize(staff, case)
    to_staff = next((s for s in colleagues(case) if str(s.id) == str(to_staff_id)), None)
    if to_staff is None or case.state not in Case.OPEN:
        raise NotPermitted()
    with db.atomic():
        Case.update(assignee=to_staff.id).where((Case.id == case.id) & Case.state.in_(Case.OPEN)).execute()
        _event(case, "transfer", now, staff, to_staff.display_name or to_staff.username)
        record(staff, "case.transfer", f"case:{case.id}", {"detail": to_staff.display_name or to_staff.username},
               community=case.community)
    return Case.get_by_id(case.id)


def urgency(case, now=None):
    """"" on time, "yellow" past its step's limit, "red" past twice that."""
    if case.state not in Case.OPEN:
        return ""
    now = now or utcnow()
    if now <= case.due_at:
        return ""
    return "red" if now > case.due_at + (case.due_at - case.step_started_at) else "yellow"


def escalate(now=None):
    """Take each step gone red (past twice its limit) up to the coordinators, once: one short
    message to each active coordinator of its community who has a resident record (their own
    phone), and a line in the case's history. Return how many steps went up."""
    now = now or utcnow()
    raised = 0
    for case in Case.select().where(Case.state.in_(Case.OPEN) & (Case.due_at < now)).order_by(Case.id):
        if urgency(case, now) != "red" or CaseEvent.select().where(
                (CaseEvent.case == case.id) & (CaseEvent.action == "escalate")
                & (CaseEvent.created_at > case.step_started_at)).exists():
            continue
        coordinators = [s for s in Staff.select().where(
            (Staff.role == Staff.COORDINATOR) & Staff.active & Staff.resident.is_null(False))
            if can_act(s, case.community, Staff.COORDINATOR)]
        with db.atomic():
            _event(case, "escalate", now)
            for staff in coordinators:
                notices.queue_notice(notices.CASE_OVERDUE, staff.resident_id, case=case.id, title=case.text,
                                     dedupe_key=f"overdue:{case.id}:{case.step_started_at.isoformat()}:{staff.id}")
        raised += 1
    return raised


def waiting_for_answer(resident):
    """The reporter's newest case waiting for their 1 (solved) or 2 (not solved), or None."""
    return (Case.select().where((Case.reporter == resident.id) & (Case.state == Case.HANDLED))
            .order_by(Case.id.desc()).first())


def latest(resident):
    return Case.select().where(Case.reporter == resident.id).order_by(Case.id.desc()).first()


def inbox(staff, now=None):
    """What a staff member has to do: {"mine", "overdue", "verify", "new"} lists of open cases."""
    now = now or utcnow()
    communities = [c.id for c in visible_communities(staff)]
    query = Case.select().where(Case.state.in_(Case.OPEN) & Case.community.in_(communities)).order_by(Case.due_at)
    cases = [c for c in query if may_handle(staff, c)]
    coordinator = staff.role in (Staff.ADMIN, Staff.COORDINATOR)
    return {
        "new": [c for c in cases if c.state == Case.RECEIVED and (c.assignee_id in (None, staff.id) or coordinator)],
        "mine": [c for c in cases if c.assignee_id == staff.id and c.state == Case.ACCEPTED],
        "verify": [c for c in cases if c.state == Case.HANDLED],
        "overdue": [c for c in cases if urgency(c, now) == "red" or (urgency(c, now) and not coordinator)],
    }
