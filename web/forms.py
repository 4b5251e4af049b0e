"""Forms (Flask-WTF: every form carries a CSRF token)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from community import cases


def choices(pairs):
    """(value, label) pairs as WTForms select options."""
    return [SelectChoice(value, label) for value, label in pairs]


LANGUAGE_CHOICES = choices([("zh_Hans", "中文"), ("en", "English")])


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=40)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class ActionForm(FlaskForm):
    """A form with nothing but its CSRF token, for buttons that change state."""


class ActivityForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=100)])
    title_en = StringField(_l("English title (optional)"), validators=[Optional(), Length(max=100)])
    description = TextAreaField(_l("Description"), validators=[Length(max=2000)])
    community = SelectField(_l("Community"), coerce=int)
    category = SelectField(_l("Category"))
    starts_at = DateTimeLocalField(_l("Starts"), format="%Y-%m-%dT%H:%M", validators=[InputRequired()])
    ends_at = DateTimeLocalField(_l("Ends"), format="%Y-%m-%dT%H:%M", validators=[InputRequired()])
    place = StringField(_l("Place"), validators=[Length(max=100)])
    capacity = IntegerField(_l("Capacity"), validators=[InputRequired(), NumberRange(min=1, max=10_000)])


class ReasonForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=200)])


class OptionalReasonForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=200)])


PICKER = _l("Resident: name, building or unit, phone number or card")


class JoinForm(FlaskForm):
    phone = StringField(PICKER, validators=[DataRequired(), Length(max=60)])


class DeedForm(FlaskForm):
    phone = StringField(PICKER, validators=[DataRequired(), Length(max=60)])
    category = SelectField(_l("Category"))
    note = StringField(_l("What happened"), validators=[DataRequired(), Length(max=200)])


class CaseForm(FlaskForm):
    phone = StringField(PICKER, validators=[DataRequired(), Length(max=60)])
    category = SelectField(_l("Kind of problem"))
    text = TextAreaField(_l("What is wrong"), validators=[DataRequired(), Length(max=300)])
    place = StringField(_l("Where (if not at the resident's home)"), validators=[Optional(), Length(max=80)])


HOURS = NumberRange(1, cases.MAX_HOURS)


class KindForm(FlaskForm):
    """One kind of problem a community's residents report."""

    name_zh = StringField(_l("Name in Chinese (at most 8 characters)"), validators=[DataRequired(), Length(max=8)])
    name_en = StringField(_l("Name in English"), validators=[Optional(), Length(max=30)])
    accept_hours = IntegerField(_l("Hours to take it on"), validators=[InputRequired(), HOURS])
    handle_hours = IntegerField(_l("Hours to deal with it"), validators=[InputRequired(), HOURS])
    verify_hours = IntegerField(_l("Hours for the reporter to check"), validators=[InputRequired(), HOURS])
    points = StringField(_l("Points for a verified fix"), validators=[Optional(), Length(max=8)])
    handler = SelectField(_l("Who takes it first"))
    active = BooleanField(_l("Offered to residents"))


class CaseActionForm(FlaskForm):
    """The next step of a case; `note` is what was done, a refusal's reason, or the case merged into."""

    note = StringField(_l("What was done, the reason, or the earlier case's number"),
                       validators=[Optional(), Length(max=300)])


class MediationForm(FlaskForm):
    community = SelectField(_l("Community"), coerce=int)
    source = SelectField(_l("Brought by"))
    summary = TextAreaField(_l("What the dispute is about"), validators=[DataRequired(), Length(max=300)])
    parties = TextAreaField(_l("The parties, one per line"), validators=[DataRequired(), Length(max=600)])
    mediators = SelectMultipleField(_l("Mediators"), coerce=int)
    private = BooleanField(_l("Private: only coordinators and its mediators see it"))


class MediationCloseForm(FlaskForm):
    outcome = SelectField(_l("Outcome"))
    terms = TextAreaField(_l("The terms agreed, and who does what"), validators=[Optional(), Length(max=500)])
    carry_out_by = DateField(_l("To be carried out by"), validators=[Optional()])
    follow_up_on = DateField(_l("Follow-up visit on"), validators=[Optional()])


class AppointForm(FlaskForm):
    community = SelectField(_l("Community"), coerce=int)
    phone = StringField(_l("A resident (name, unit or phone number), or a staff member's username"),
                        validators=[DataRequired(), Length(max=60)])


class ResidentForm(FlaskForm):
    display_name = StringField(_l("Name"), validators=[DataRequired(), Length(max=60)])
    phone = StringField(_l("Phone number"), validators=[Optional(), Length(max=32)])
    community = SelectField(_l("Community"), coerce=int)
    language = SelectField(_l("Language"), choices=LANGUAGE_CHOICES)
    grid_label = StringField(_l("Grid"), validators=[Length(max=40)])
    unit_label = StringField(_l("Unit"), validators=[Length(max=40)])
    sms_opt_out = BooleanField(_l("No SMS (opted out)"))


class RuleForm(FlaskForm):
    category = SelectField(_l("Category"), validate_choice=False)
    points = StringField(_l("Points"), validators=[DataRequired(), Length(max=20)])
    confirmations_required = SelectField(_l("Confirmations needed"), coerce=int,
                                         choices=choices([(1, "1"), (2, "2")]))
    name_zh = StringField(_l("Chinese name"), validators=[Optional(), Length(max=40)])
    name_en = StringField(_l("English name"), validators=[Optional(), Length(max=40)])


class SimulatorForm(FlaskForm):
    phone = StringField(_l("Phone number"), validators=[DataRequired(), Length(max=32)])
    message = StringField(_l("Message"), validators=[DataRequired(), Length(max=1600)])


class AnnounceForm(FlaskForm):
    community = SelectField(_l("Community"), coerce=int)
    text = TextAreaField(_l("Announcement"), validators=[DataRequired(), Length(max=300)])
    preview = SubmitField(_l("Preview"))
    send = SubmitField(_l("Send"))


class GoodsForm(FlaskForm):
    community = SelectField(_l("Community"), coerce=int)
    name_zh = StringField(_l("Chinese name"), validators=[DataRequired(), Length(max=60)])
    name_en = StringField(_l("English name (optional)"), validators=[Optional(), Length(max=60)])
    price = StringField(_l("Points"), validators=[DataRequired(), Length(max=20)])
    limit_quantity = IntegerField(_l("Limit per resident"), validators=[Optional(), NumberRange(min=1, max=99)])
    limit_period = SelectField(_l("per"), choices=choices([("", "—"), ("month", _l("month")), ("week", _l("week"))]))
    active = BooleanField(_l("On sale"), default=True)


class StockForm(FlaskForm):
    kind = SelectField(_l("Change"), choices=choices([("receive", _l("Delivery")), ("adjust", _l("Correction"))]))
    quantity = IntegerField(_l("Quantity"), validators=[InputRequired(), NumberRange(min=-100_000, max=100_000)])
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=200)])


class StaffForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=40)])
    display_name = StringField(_l("Name"), validators=[Optional(), Length(max=60)])
    role = SelectField(_l("Role"))
    community = SelectField(_l("Community"), validate_choice=False)


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"))
    community = SelectField(_l("Community"), validate_choice=False)


class OwnPasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=200)])
    new = PasswordField(_l("New password (at least 10 characters)"), validators=[DataRequired(), Length(max=200)])
    again = PasswordField(_l("New password again"), validators=[DataRequired(), Length(max=200)])


class PlaceForm(FlaskForm):
    code = StringField(_l("Code (from the grid centre)"), validators=[DataRequired(), Length(max=20)])
    name_zh = StringField(_l("Chinese name"), validators=[DataRequired(), Length(max=100)])
    level = SelectField(_l("Level"))
    parent = SelectField(_l("Belongs to"), validate_choice=False)
    name_en = StringField(_l("English name (optional)"), validators=[Optional(), Length(max=100)])
    phone = StringField(_l("Office phone (given in the SMS menu)"), validators=[Optional(), Length(max=32)])
