"""The community's named errors. Each docstring is the message (English msgid) a transport shows."""


class CommunityError(Exception):
    """The request could not be carried out."""

    def __init__(self, message=None, **details):
        self.details = details
        super().__init__(message or (self.__doc__ or "").strip())


class InvalidInput(CommunityError):
    """Some of the details are missing or not valid."""


class InvalidPhone(CommunityError):
    """That is not a valid phone number."""


class DuplicateResident(CommunityError):
    """A resident with this phone number or Telegram account already exists."""


class ResidentNotFound(CommunityError):
    """No such resident."""


class SeveralResidents(CommunityError):
    """Several residents match: %(names)s. Type more of the name, the unit or the phone number."""


class ResidentClosed(CommunityError):
    """This resident's account is closed."""


class UnknownCommunity(CommunityError):
    """No such community."""


class UnknownCategory(CommunityError):
    """No such point category."""


class NotPermitted(CommunityError):
    """You are not allowed to do that here."""


class ActivityNotFound(CommunityError):
    """No such activity."""


class ActivityNotOpen(CommunityError):
    """This activity is not open."""


class ActivityStarted(CommunityError):
    """This activity has already started; sign-ups and cancellations are closed."""


class NotSignedUp(CommunityError):
    """You are not signed up for this activity."""


class WrongCheckInCode(CommunityError):
    """That check-in code does not match an activity you are signed up for today."""


class TooManyCheckInAttempts(CommunityError):
    """Too many wrong check-in codes; the activity's staff can still confirm that you took part."""


class DecisionNeeded(CommunityError):
    """Before closing the account, decide what happens to its points and to its sign-ups."""


class NotStartedYet(CommunityError):
    """This activity has not started yet: participation is confirmed once it has begun."""


class NotPending(CommunityError):
    """This sign-up has already been decided."""


class SelfConfirmation(CommunityError):
    """Staff cannot confirm their own participation."""


class AlreadyConfirmedByYou(CommunityError):
    """You have already confirmed this; a second staff member must confirm it."""


class NotConfirmed(CommunityError):
    """Only a confirmed award can be reversed."""


class BadCredentials(CommunityError):
    """Wrong username or password."""


class TooManyLogins(CommunityError):
    """Too many failed logins; try again later."""

    @property
    def minutes(self):
        """Whole minutes until logins are accepted again."""
        return self.details.get("minutes", 1)


class FormExpired(CommunityError):
    """This form is out of date: open the page again and fill it in once more."""


class PasswordTooShort(InvalidInput):
    """A password has at least %(length)s characters."""


class PasswordIsUsername(InvalidInput):
    """A password must not be the username."""


class PasswordTooCommon(InvalidInput):
    """That password is too common; choose another."""


class LastAdmin(CommunityError):
    """The last active admin must stay an active admin."""


class NotYourself(CommunityError):
    """You cannot disable your own account."""


class NeedsPhoneOrUnit(InvalidInput):
    """A resident without a phone number needs a building and unit."""


class TooManyFields(InvalidInput):
    """The row has more fields than the header."""


class UnknownLanguage(InvalidInput):
    """The language is 中文 or English, not %(value)s."""


class InvalidName(InvalidInput):
    """A name is 1 to %(length)s characters."""


class NotASheet(InvalidInput):
    """The file is not a CSV sheet in UTF-8 or GBK; in Excel, save it as “CSV”."""


class MissingColumns(InvalidInput):
    """The sheet lacks the columns %(columns)s."""


class PlaceInUse(CommunityError):
    """%(code)s has residents or points postings: it can be renamed or moved, not archived."""


class CaseNotFound(CommunityError):
    """No such case number."""


class CaseNotOpen(CommunityError):
    """This case is already closed."""


class CaseWrongStep(CommunityError):
    """This case is not at that step."""


class ReportTooLong(InvalidInput):
    """Please describe the problem in 1 to 300 characters."""


class ReasonNeeded(InvalidInput):
    """Please write the reason in the box first."""


class SayWhatWasDone(InvalidInput):
    """Please write what was done in the box first."""


class NotAnEarlierCase(InvalidInput):
    """Write the number of an earlier open case of the same community in the box."""


class MediationNeeds(InvalidInput):
    """A mediation needs a summary, two parties and at least one mediator of this community."""


class MediatorIsAParty(InvalidInput):
    """A mediator who is a party, or related to one, declares it and steps aside."""


class LastMediator(InvalidInput):
    """Appoint another mediator before the last one steps aside."""


class TermsNeeded(InvalidInput):
    """An agreement needs its terms written down."""


class MediationClosed(CommunityError):
    """This mediation is already closed."""


class CheckedBySomeoneElse(CommunityError):
    """Someone else checks the fix: ask a colleague, or the reporter answers 1."""


class FollowUpAfterOutcome(CommunityError):
    """The follow-up visit is recorded once, after the mediation is closed."""


class KindNameNeeded(InvalidInput):
    """Give the kind a Chinese name of at most 8 characters (and an English one of at most 30)."""


class KindNameTaken(InvalidInput):
    """This community already has a kind with that name."""


class TooManyKinds(InvalidInput):
    """A community offers at most 9 kinds, so that residents pick one with a single digit. Stop offering one first."""


class LastKind(InvalidInput):
    """At least one kind must stay on offer."""


class NotAPhoto(InvalidInput):
    """That picture could not be read. Please send it again as a photo."""


class KindLimits(InvalidInput):
    """Each time limit is 1 to 720 hours (30 days), and a kind earns at most 5 points."""


class KindNotOffered(InvalidInput):
    """The resident's community does not offer that kind of problem. Please pick another."""
