"""Communities, residents, staff, point rules, activities, sign-ups, notices and the audit log."""

from peewee import (
    BigIntegerField,
    BlobField,
    BooleanField,
    CharField,
    DateTimeField,
    IntegerField,
    TextField,
)

from ledger import Account, Transfer
from ledger.models import BaseModel, ForeignKeyField, utcnow

LANGUAGES = ("zh_Hans", "en")


class Community(BaseModel):
    """A place of the five-level grid: a district, a street (town), a community (village), a grid
    or a unit (community.places); communities own an issuer account."""

    DISTRICT, STREET, COMMUNITY, GRID, UNIT = "district", "street", "community", "grid", "unit"
    LEVELS = (DISTRICT, STREET, COMMUNITY, GRID, UNIT)

    code = CharField(max_length=20, unique=True)
    name_zh = CharField(max_length=100)
    name_en = CharField(max_length=100)
    level = CharField(max_length=20)
    parent = ForeignKeyField("self", null=True, backref="children")
    issuer = ForeignKeyField(Account, null=True, unique=True)
    phone = CharField(max_length=32, default="")  # the office's number, for help from a person
    archived = BooleanField(default=False)  # kept for the records, offered nowhere
    created_at = DateTimeField(default=utcnow)

    def name(self, language):
        return (self.name_en or self.name_zh) if language == "en" else self.name_zh


class Resident(BaseModel):
    """One person across Telegram, SMS and the member card."""

    ACTIVE, UNVERIFIED, CLOSED = "active", "unverified", "closed"
    STATUSES = (ACTIVE, UNVERIFIED, CLOSED)

    community = ForeignKeyField(Community, backref="residents")
    display_name = CharField(max_length=60)
    phone = CharField(max_length=20, null=True, unique=True)
    telegram_id = BigIntegerField(null=True, unique=True)
    language = CharField(max_length=8, default="zh_Hans")
    status = CharField(max_length=12, default=ACTIVE)
    grid_label = CharField(max_length=40, default="")
    unit_label = CharField(max_length=40, default="")
    account = ForeignKeyField(Account, unique=True)
    created_at = DateTimeField(default=utcnow)


class Contact(BaseModel):
    """How a resident wants to hear from us on one channel (community.contacts). The address is the
    resident's own (`phone`, `telegram_id`); no row means the defaults: reachable, announcements
    on, not yet verified."""

    SMS, TELEGRAM = "sms", "telegram"
    CHANNELS = (TELEGRAM, SMS)  # the order notices try them in

    resident = ForeignKeyField(Resident, backref="contacts")
    channel = CharField(max_length=12)
    opted_out = BooleanField(default=False)  # STOP on this channel: no notices on it at all
    no_announcements = BooleanField(default=False)  # 退订通知: receipts and reminders only
    verified = BooleanField(default=False)  # the resident has written to us from this address
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("resident", "channel"), True),)


class Staff(BaseModel):
    """A staff user. Admins act everywhere; coordinators and clerks in their community; a grid
    worker (网格员, 单元长) for the residents of their grid or unit."""

    ADMIN, COORDINATOR, CLERK, GRID_WORKER = "admin", "coordinator", "clerk", "grid_worker"
    ROLES = (ADMIN, COORDINATOR, CLERK, GRID_WORKER)

    username = CharField(max_length=40, unique=True)
    password_hash = CharField(max_length=200)
    display_name = CharField(max_length=60, default="")
    role = CharField(max_length=12)
    community = ForeignKeyField(Community, null=True, backref="staff")
    resident = ForeignKeyField(Resident, null=True, unique=True, backref="staff_user")
    active = BooleanField(default=True)
    must_change_password = BooleanField(default=False)  # after a reset: a one-time password
    sessions = IntegerField(default=0)  # bumped to end every open session (logout, disable, reset)
    last_login_at = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)


class PointRule(BaseModel):
    """One version of a category's worth. Rows are only added; the highest version applies."""

    category = CharField(max_length=30)
    version = IntegerField()
    points = IntegerField()
    confirmations_required = IntegerField(default=1)
    name_zh = CharField(max_length=40)
    name_en = CharField(max_length=40)
    created_by = ForeignKeyField(Staff, null=True)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("category", "version"), True),)

    def name(self, language):
        return (self.name_en or self.name_zh) if language == "en" else self.name_zh


class Activity(BaseModel):
    """A volunteering activity residents can sign up for."""

    OPEN, CLOSED, CANCELLED = "open", "closed", "cancelled"

    community = ForeignKeyField(Community, backref="activities")
    code = CharField(max_length=8)
    title = CharField(max_length=100)
    title_en = CharField(max_length=100, default="")  # optional: English readers get it
    description = TextField(default="")
    category = CharField(max_length=30)
    starts_at = DateTimeField()
    ends_at = DateTimeField()
    place = CharField(max_length=100, default="")
    capacity = IntegerField()
    taken = IntegerField(default=0)
    status = CharField(max_length=12, default=OPEN)
    checkin_code = CharField(max_length=8)
    created_by = ForeignKeyField(Staff, null=True)
    created_at = DateTimeField(default=utcnow)

    def title_for(self, language):
        return (self.title_en or self.title) if language == "en" else self.title


class Signup(BaseModel):
    """A resident's place in an activity, or an ad-hoc deed (no activity) awaiting confirmation."""

    SIGNED_UP, WAITLISTED, CHECKED_IN = "signed_up", "waitlisted", "checked_in"
    CONFIRMED, REJECTED, NO_SHOW = "confirmed", "rejected", "no_show"
    CANCELLED, REVERSED = "cancelled", "reversed"
    #: States that hold a seat in the activity.
    SEATED = (SIGNED_UP, CHECKED_IN, CONFIRMED, REVERSED)
    #: States a coordinator can still confirm, reject or mark as no-show.
    PENDING = (SIGNED_UP, CHECKED_IN)
    #: States of residents who were on the list but not (or no longer) counted as coming: their
    #: attendance can still be recorded once the activity is under way.
    ABSENT = (WAITLISTED, CANCELLED, NO_SHOW)

    activity = ForeignKeyField(Activity, null=True, backref="signups")
    resident = ForeignKeyField(Resident, backref="signups")
    category = CharField(max_length=30, default="")
    note = TextField(default="")
    state = CharField(max_length=12)
    reason = TextField(default="")
    transfer = ForeignKeyField(Transfer, null=True)
    rule = ForeignKeyField(PointRule, null=True)
    created_by = ForeignKeyField(Staff, null=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        # (activity, state): migration 0020's signup_activity_state.
        indexes = ((("activity", "resident"), True), (("activity", "state"), False))


class CheckInFailure(BaseModel):
    """A wrong check-in code, counted so that codes cannot be guessed."""

    resident = ForeignKeyField(Resident)
    created_at = DateTimeField(default=utcnow, index=True)


class Confirmation(BaseModel):
    """One staff member's confirmation of a sign-up (some categories need two)."""

    signup = ForeignKeyField(Signup, backref="confirmations")
    staff = ForeignKeyField(Staff)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("signup", "staff"), True),)


class Notice(BaseModel):
    """Something a resident should hear about, written with the change, sent later."""

    PENDING, SENT, FAILED = "pending", "sent", "failed"

    kind = CharField(max_length=30)
    resident = ForeignKeyField(Resident, backref="notices", null=True)  # None: a reply to a newcomer
    address = CharField(max_length=40, default="")  # a reply's number; else the resident's channels
    params = TextField(default="{}")
    dedupe_key = CharField(max_length=100, null=True, unique=True)
    status = CharField(max_length=12, default=PENDING)
    attempts = IntegerField(default=0)
    channel = CharField(max_length=12, default="")
    last_error = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    next_attempt_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField(null=True)
    provider_id = CharField(max_length=64, default="", index=True)
    delivery_status = CharField(max_length=40, default="")


class Case(BaseModel):
    """A matter a resident reported (事事有回音), from received to closed (community.cases). Its id
    is the number residents quote: 进度 2041."""

    RECEIVED, ACCEPTED, HANDLED, CLOSED, REFUSED, MERGED = (
        "received", "accepted", "handled", "closed", "refused", "merged")
    OPEN = (RECEIVED, ACCEPTED, HANDLED)

    community = ForeignKeyField(Community, backref="cases")
    reporter = ForeignKeyField(Resident, backref="cases")
    reported_by = ForeignKeyField(Staff, null=True)  # staff who wrote it down for the resident
    category = CharField(max_length=20)
    text = CharField(max_length=300)
    place = CharField(max_length=80, default="")  # the resident's unit unless they named another
    state = CharField(max_length=12, default=RECEIVED)
    assignee = ForeignKeyField(Staff, null=True, backref="cases")  # None: the coordinators'
    due_at = DateTimeField()  # when the current step (accept, handle, verify) should be done
    step_started_at = DateTimeField(default=utcnow)
    duplicate_of = ForeignKeyField("self", null=True, backref="duplicates")
    reason = CharField(max_length=300, default="")  # a refusal's, or what was done
    points = IntegerField(default=0)  # awarded to the reporter on verified closure
    transfer = ForeignKeyField(Transfer, null=True)
    reopened = IntegerField(default=0)
    created_at = DateTimeField(default=utcnow)
    closed_at = DateTimeField(null=True)


class CaseKind(BaseModel):
    """One kind of problem a community's residents report (community.cases): its name, the time
    limit of each step, the points a verified fix earns the reporter, and who takes it first (none:
    the reporter's grid worker). A community without rows offers the default kinds."""

    community = ForeignKeyField(Community, backref="case_kinds")
    code = CharField(max_length=20)  # what its cases store; never reused for another kind
    position = IntegerField()  # the number residents reply with, among the active kinds
    name_zh = CharField(max_length=8)
    name_en = CharField(max_length=30, default="")
    accept_hours = IntegerField()
    handle_hours = IntegerField()
    verify_hours = IntegerField()
    points = IntegerField(default=0)  # hundredths
    handler = ForeignKeyField(Staff, null=True)
    active = BooleanField(default=True)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("community", "code"), True),)


class Photo(BaseModel):
    """A photo a resident sent with a report (on Telegram), re-encoded as a small JPEG."""

    resident = ForeignKeyField(Resident)
    case = ForeignKeyField(Case, null=True, backref="photos")  # None until the report is made
    data = BlobField()
    created_at = DateTimeField(default=utcnow)


class CaseEvent(BaseModel):
    """One step in a case's history, by staff or by the reporter."""

    case = ForeignKeyField(Case, backref="events")
    action = CharField(max_length=20)
    staff = ForeignKeyField(Staff, null=True)
    detail = CharField(max_length=300, default="")
    created_at = DateTimeField(default=utcnow)


class Mediator(BaseModel):
    """An appointed mediator of a community's neighbour reasoning room (近邻评理室): a resident or
    a staff member."""

    community = ForeignKeyField(Community, backref="mediators")
    resident = ForeignKeyField(Resident, null=True)
    staff = ForeignKeyField(Staff, null=True)
    active = BooleanField(default=True)
    appointed_by = ForeignKeyField(Staff, null=True)
    created_at = DateTimeField(default=utcnow)

    def name(self):
        return self.resident.display_name if self.resident_id else (self.staff.display_name or self.staff.username)


class Mediation(BaseModel):
    """A dispute brought to mediation (community.mediation), from a report, a walk-in, or a
    transfer from the police or the 12345 hotline."""

    OPEN, CLOSED = "open", "closed"
    SOURCES = ("walk_in", "report", "police", "hotline")
    WRITTEN, ORAL, REFERRED, WITHDRAWN = "written", "oral", "referred", "withdrawn"
    OUTCOMES = (WRITTEN, ORAL, REFERRED, WITHDRAWN)

    community = ForeignKeyField(Community, backref="mediations")
    source = CharField(max_length=12)
    case = ForeignKeyField(Case, null=True)
    summary = CharField(max_length=300)
    parties = TextField()  # JSON: [{"name": ..., "resident": id or null}, ...]
    private = BooleanField(default=False)
    state = CharField(max_length=8, default=OPEN)
    due_at = DateTimeField()
    outcome = CharField(max_length=12, default="")
    terms = CharField(max_length=500, default="")
    carry_out_by = DateTimeField(null=True)
    follow_up_on = DateTimeField(null=True)
    followed_up_at = DateTimeField(null=True)
    follow_up_note = CharField(max_length=300, default="")
    created_by = ForeignKeyField(Staff)
    created_at = DateTimeField(default=utcnow)
    closed_at = DateTimeField(null=True)


class MediationSeat(BaseModel):
    """A mediator on one mediation; one related to a party declares it and steps aside."""

    mediation = ForeignKeyField(Mediation, backref="seats")
    mediator = ForeignKeyField(Mediator)
    stepped_aside = BooleanField(default=False)
    reason = CharField(max_length=200, default="")
    transfer = ForeignKeyField(Transfer, null=True)

    class Meta:
        indexes = ((("mediation", "mediator"), True),)


class AuditEvent(BaseModel):
    """Who did what, when, in which community."""

    staff = ForeignKeyField(Staff, null=True)
    action = CharField(max_length=40)
    target = CharField(max_length=100, default="")
    detail = TextField(default="{}")
    community = ForeignKeyField(Community, null=True)
    created_at = DateTimeField(default=utcnow)


class LoginFailure(BaseModel):
    """A failed staff login, counted per username and per client address to slow guessing down.

    The username is kept only as a digest: people type passwords into the username field.
    """

    username_key = CharField(max_length=64)
    address = CharField(max_length=64, default="")
    created_at = DateTimeField(default=utcnow, index=True)

    class Meta:
        indexes = ((("username_key", "created_at"), False), (("address", "created_at"), False))


class LoginLockout(BaseModel):
    """A username (`user:` + digest) or an address (`addr:` + address) refused logins until `until`."""

    key = CharField(max_length=80)
    created_at = DateTimeField(default=utcnow)
    until = DateTimeField()

    class Meta:
        indexes = ((("key", "until"), False),)


class FormSubmission(BaseModel):
    """A create form that was carried out, by its one-time key: sent again, it has no second effect.

    `result` is the id of what it made (or a count), so a repeat can show the same outcome.
    """

    key = CharField(max_length=40, unique=True)
    staff = ForeignKeyField(Staff)
    action = CharField(max_length=40)
    result = IntegerField(null=True)
    created_at = DateTimeField(default=utcnow)


MODELS = [Community, Resident, Contact, Staff, PointRule, Activity, Signup, CheckInFailure, Confirmation, Notice,
          Case, CaseKind, Photo, CaseEvent, Mediator, Mediation, MediationSeat, AuditEvent, LoginFailure,
          LoginLockout, FormSubmission]
