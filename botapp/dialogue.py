"""The channel-neutral dialogue: a resident's words in, one service call, a reply out.

Telegram and SMS are thin adapters over `Dialogue.handle`. Telegram buttons carry the same
command words a resident would type by SMS, so both channels run the same code path.
"""

import json
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from babel.support import NullTranslations, Translations

import ledger
from catalog.codes import LIFETIME, consume, find_qr_code, issue_digit_code, issue_qr_code
from catalog.goods import goods_for
from catalog.models import CounterCode
from catalog.reports import done_on, what_for
from community import Case, CommunityError, Resident, cases, contacts
from community import activities as act
from community.errors import ActivityNotFound, ReportTooLong, ResidentClosed
from community.people import balance_of, communities, find_resident, register_resident, rename_self, sender_lookup
from ledger import db
from ledger.db import later, prepared, together
from ledger.models import to_local, utcnow

from .channels import capabilities
from .grammar import clean, name_from, number, report_text, understand, whole
from .models import Conversation, contact_of
from .qr import qr_png
from .segments import fits


def _l(msgid):
    """Mark a message for the catalogue; it is translated where it is shown."""
    return msgid

SMS, TELEGRAM = contacts.SMS, contacts.TELEGRAM
LANGUAGES = ("zh_Hans", "en")
HISTORY_LINES = 5
HISTORY_PAGES = 4  # 更多 pages back through the passbook, five lines a page, up to 20 lines

#: What each number of the menu does (0 always shows the menu again).
MENU = (("list", _l("activities")), ("mine", _l("my sign-ups")), ("history", _l("history")),
        ("code", _l("counter code")), ("shop", _l("goods")), ("rename", _l("change name")),
        ("report", _l("report")))


def parse(text):
    """The intent of a message and its argument: ("join", "A12") for 报名：A12."""
    intent, argument, _cleaned = understand(text)
    return intent, argument


@dataclass(frozen=True)
class Button:
    """A choice offered with a reply; `command` is what pressing it sends back."""

    label: str
    command: str


@dataclass
class Reply:
    """What the resident gets: a heading, optional list lines, buttons and image, or nothing."""

    text: str = ""
    lines: list = field(default_factory=list)
    buttons: list = field(default_factory=list)
    silent: bool = False
    language: str = "zh_Hans"
    image: bytes | None = None

    def full_text(self):
        return "\n".join([self.text, *self.lines]).strip()


_new_conversation = prepared(lambda channel, address, language, now: Conversation.insert(
    channel=channel, address=address, language=language, updated_at=now).on_conflict_ignore())
_conversation = prepared(lambda channel, address: Conversation.select().where(
    (Conversation.channel == channel) & (Conversation.address == address)))

#: Longest names, titles and places quoted in a reply, so every reply fits its SMS budget.
SHORT = 20


def short(text, limit=SHORT):
    """Quote at most `limit` characters of a name, title or place."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def truncate(line, *context):
    """Shorten one line so that it fits the SMS budget together with `context`."""
    while line and not fits("\n".join([*context, line + "…"])):
        line = line[:-1]
    return line + "…"


class Dialogue:
    """The resident dialogue, configured once by an entry point."""

    def __init__(self, translations_dir=None, region="CN", timezone="Asia/Shanghai", code_secret=None,
                 bot_username=""):
        self.region = region
        self.code_secret = code_secret
        self.bot_username = bot_username
        self.zone = ZoneInfo(timezone)
        self._translations = {
            "en": NullTranslations(),
            "zh_Hans": (
                Translations.load(translations_dir, ["zh_Hans"]) if translations_dir else NullTranslations()
            ),
        }

    # --- plumbing ---------------------------------------------------------------------------

    def gettext(self, language):
        """The gettext function for a language: `_(msgid, **params)`, like Flask-Babel's."""
        translate = self._translations.get(language, self._translations["zh_Hans"]).gettext

        def _(msgid, **params):
            text = translate(msgid)
            return text % params if params else text

        return _

    def local(self, when, fmt="%m-%d %H:%M"):
        """Format a stored UTC time in the community's time zone."""
        return to_local(when, self.zone).strftime(fmt)

    def error(self, exc, language):
        """A named domain error in the resident's language."""
        _ = self.gettext(language)
        return _((type(exc).__doc__ or str(exc)).strip())

    def conversation(self, channel, address, language=None):
        """The sender's conversation row, started on first contact (race-safe) in `language` (a
        newcomer's app's, where known); later messages keep theirs."""
        found = _conversation(channel, address)
        return found[0] if found else self._start(channel, address, language)

    @staticmethod
    def _start(channel, address, language):
        """A newcomer's conversation, written with the transaction's next statement (one that
        another of their messages started a moment ago stays as it is)."""
        started = Conversation(channel=channel, address=address, language=language or Conversation.language.default,
                               updated_at=utcnow())
        later(_new_conversation.bind(channel, address, started.language, started.updated_at))
        return started

    def look_up(self, channel, address, *also):
        """What answering a message reads first, in one go: the sender's conversation (None
        before their first message), their (resident, contact), and the results of the prepared
        queries `also` (`query.bind(...)`)."""
        conversation, sender, *rest = together(_conversation.bind(channel, address),
                                               self._sender(channel, address), *also)
        return (conversation[0] if conversation else None), sender, rest

    @staticmethod
    def remember(conversation, **changes):
        """Save changes to a conversation (its own sender only ever changes it)."""
        changes["updated_at"] = utcnow()
        Conversation.update(**changes).where(
            (Conversation.channel == conversation.channel) & (Conversation.address == conversation.address)).execute()
        for key, value in changes.items():
            setattr(conversation, key, value)

    def has_phone(self, channel, address):
        """Tell whether the sender is a resident with a phone number on record."""
        resident = self.resident_for(channel, address)
        return bool(resident and resident.phone)

    def language_of(self, channel, address):
        resident = self.resident_for(channel, address)
        return resident.language if resident else self.conversation(channel, address).language

    def opted_out_number(self, phone):
        """Tell whether this number said STOP (or staff recorded that it did)."""
        conversation, resident = self.conversation(SMS, phone), self.resident_for(SMS, phone)
        return contact_of(resident, SMS, conversation).opted_out if resident else conversation.opted_out

    def resident_for(self, channel, address):
        return self.resident_and_contact(channel, address)[0]

    def resident_and_contact(self, channel, address):
        """The sender's resident record and their contact on `channel`, or (None, None)."""
        return self._sender(channel, address).run()

    def _sender(self, channel, address):
        if channel == SMS:
            return sender_lookup(phone=address, region=self.region)
        return sender_lookup(telegram_id=int(address))

    # --- the entry point ---------------------------------------------------------------------

    #: The turns of the dialogue: (conversation state, intent) → what is done. "*" is any state,
    #: None a message without a command word, "choice" a bare number. The words of each intent
    #: are in botapp.grammar.
    TURNS = {
        ("*", None): "unknown", ("*", "menu"): "menu", ("*", "help"): "menu", ("*", "yes"): "menu",
        ("*", "no"): "menu", ("*", "choice"): "choose", ("*", "list"): "list", ("*", "join"): "join",
        ("*", "cancel"): "cancel", ("*", "mine"): "mine", ("*", "here"): "here",
        ("*", "balance"): "balance", ("*", "history"): "history", ("*", "shop"): "shop",
        ("*", "code"): "code", ("*", "redeem"): "redeem", ("*", "telegram"): "telegram",
        ("*", "language"): "language", ("*", "rename"): "rename", ("*", "quiet"): "quiet", ("*", "loud"): "loud",
        ("awaiting_join", "choice"): "join", ("awaiting_join", None): "join",
        ("awaiting_cancel", "choice"): "cancel", ("awaiting_cancel", None): "cancel",
        ("confirm_cancel", "yes"): "cancel_confirmed", ("confirm_cancel", "no"): "cancel_kept",
        ("awaiting_checkin", "choice"): "here",
        ("renaming", None): "new_name", ("renaming", "choice"): "new_name",
        ("confirm_rename", "yes"): "rename_confirmed", ("confirm_rename", "no"): "rename",
        ("confirm_rename", None): "new_name",
        ("*", "report"): "report", ("awaiting_report", None): "report",
        ("report_category", "choice"): "report_category", ("report_category", None): "report_category",
        ("*", "progress"): "progress",
        ("*", "solved"): "case_solved", ("*", "unsolved"): "case_unsolved",
        ("verify_case", "yes"): "case_solved", ("verify_case", "no"): "case_unsolved",
    }
    #: States whose answer is free text, whatever command words it holds (活动室的灯坏了).
    FREE_TEXT = ("awaiting_report",)
    #: States of a report being made (the photos sent for it are kept until it is).
    REPORTING = ("awaiting_report", "report_category")
    #: States that asked "1 yes / 2 no".
    CONFIRMING = ("confirm_cancel", "confirm_rename", "confirm_name", "verify_case")

    def handle(self, channel, address, text, *, now=None, language=None, found=None):
        """Answer one message from `address` on `channel` (a newcomer's app is in `language`);
        `found`: what `look_up` just read for it."""
        now = now or utcnow()
        intent, argument, cleaned = understand(text)
        conversation, (resident, contact) = found or self.look_up(channel, address)[:2]
        conversation = conversation or self._start(channel, address, language)
        if conversation.state in self.FREE_TEXT:  # a report's words are its own: only a bare STOP, 0 or 菜单 counts
            bare = "menu" if cleaned == "0" else whole(text)
            intent = bare if bare in ("stop", "start", "menu", "help", "cancel") else None
            argument = argument if intent else cleaned
        language = resident.language if resident else conversation.language

        # Opting out and back in come before everything else, in any state.
        if intent == "stop":
            return self.stop(channel, conversation, resident, language)
        if intent == "start":
            return self.start(channel, conversation, resident, language)
        contact = contact_of(resident, channel, conversation, contact) if resident else None
        if channel == SMS and (contact.opted_out if contact else conversation.opted_out):
            return self.opted_out(conversation, language, now)
        if contact is not None and not contact.verified:
            contacts.mark_verified(resident, channel)
        closed = resident is not None and resident.status == Resident.CLOSED
        if intent == "more" and not closed:  # what did not fit, in any state (registration too)
            return self.more(conversation, language)
        reply = self.answer(channel, address, conversation, resident, intent, argument, cleaned, now)
        return self.page(reply, conversation) if capabilities(channel).segment_budget else reply

    def answer(self, channel, address, conversation, resident, intent, argument, cleaned, now):
        """The reply to one message, before SMS paging."""
        language = resident.language if resident else conversation.language
        if intent in ("chinese", "english") or (intent == "language" and argument):
            return self.switch_language(conversation, resident, intent, argument)
        if resident is None:
            return self.register(channel, address, conversation, intent, argument, cleaned, now)
        if resident.status == Resident.CLOSED:
            return Reply(self.error(ResidentClosed(), language), language=language)
        state = conversation.state
        if intent is None and number(cleaned) is not None and state not in self.FREE_TEXT:
            digits = re.sub(r"\D", "", cleaned)
            intent, argument = "choice", digits if digits.isascii() and digits else str(number(cleaned))
        if state in self.CONFIRMING and intent == "choice" and argument in ("1", "2"):
            intent = "yes" if argument == "1" else "no"
        if intent == "choice" and argument == "0":
            intent = "menu"
        if intent == "redeem" and not capabilities(channel).images:
            intent = "code"  # a QR image cannot travel by SMS: six digits instead
        turn = self.TURNS.get((state, intent)) or self.TURNS.get(("*", intent)) or "unknown"
        if state:
            self.remember(conversation, state="")
        if turn not in ("report", "report_category") and '"photos"' in (conversation.data or ""):
            self.keep(conversation, photos=None)  # the report they were for was given up
        try:
            return getattr(self, f"do_{turn}")(resident, argument, now, conversation)
        except (CommunityError, ledger.LedgerError) as exc:
            return Reply(self.error(exc, resident.language), language=resident.language)

    # --- what the conversation keeps ---------------------------------------------------------

    @staticmethod
    def kept(conversation):
        return json.loads(conversation.data or "{}")

    def keep(self, conversation, **values):
        """Merge values into what the conversation keeps (None forgets a value)."""
        data = {**self.kept(conversation), **values}
        data = {key: value for key, value in data.items() if value is not None}
        self.remember(conversation, data=json.dumps(data, ensure_ascii=False))

    def offer(self, conversation, kind, items, state=""):
        """Remember a numbered list just shown, so that a number picks from it."""
        self.keep(conversation, list={"kind": kind, "items": items})
        if state:
            self.remember(conversation, state=state)

    def offered(self, conversation, kind):
        shown = self.kept(conversation).get("list") or {}
        return shown.get("items") if shown.get("kind") == kind else None

    # --- SMS paging --------------------------------------------------------------------------

    def page(self, reply, conversation):
        """Keep an SMS reply within the segment budget; lines that do not fit wait for MORE."""
        _ = self.gettext(reply.language)
        data = self.kept(conversation)
        if fits(reply.full_text()):
            if data.pop("more", None) is not None:
                self.remember(conversation, data=json.dumps(data, ensure_ascii=False))
            return reply
        footer = _("Reply MORE for more.")
        text = reply.text if fits("\n".join([reply.text, footer])) else truncate(reply.text, footer)
        shown, rest = [], list(reply.lines)
        while rest and fits("\n".join([text, *shown, rest[0], footer])):
            shown.append(rest.pop(0))
        if not shown and rest:  # a single line longer than the budget is cut, never dropped
            shown.append(truncate(rest.pop(0), text, footer))
        data["more"] = rest
        self.remember(conversation, data=json.dumps(data, ensure_ascii=False))
        return Reply(text, shown + ([footer] if rest else []), reply.buttons, language=reply.language)

    def more(self, conversation, language):
        """The next page of what an earlier SMS reply could not hold."""
        _ = self.gettext(language)
        waiting = self.kept(conversation).get("more") or []
        if not waiting:
            return Reply(_("Nothing more to show."), language=language)
        return self.page(Reply("", waiting, language=language), conversation)

    # --- opting out, language ---------------------------------------------------------------

    def stop(self, channel, conversation, resident, language):
        """STOP ends every notice on this channel (an SMS STOP, SMS; a Telegram one, Telegram)."""
        _ = self.gettext(language)
        self.remember(conversation, opted_out=True)
        if resident is not None:
            contacts.set_opted_out(resident, channel, True)
        if channel == TELEGRAM:
            return Reply(_("You will get no more notices here. Send START to get them again."), language=language)
        return Reply(_("You will get no more SMS from Linli. Reply START to subscribe again."),
                     language=language)

    def start(self, channel, conversation, resident, language):
        _ = self.gettext(language)
        self.remember(conversation, opted_out=False)
        if resident is not None:
            contacts.set_opted_out(resident, channel, False)
        return Reply(_("Subscribed again. Reply 0 for the menu."), language=language)

    def do_quiet(self, resident, argument, now, conversation):
        """退订通知: no more announcements; receipts, codes and reminders still come."""
        contacts.set_announcements(resident, False)
        _ = self.gettext(resident.language)
        return Reply(_("You will get no more announcements. Points, codes and reminders still come. "
                       "Reply NEWS to get them again."), language=resident.language)

    def do_loud(self, resident, argument, now, conversation):
        contacts.set_announcements(resident, True)
        _ = self.gettext(resident.language)
        return Reply(_("You will get the community's announcements again."), language=resident.language)

    def opted_out(self, conversation, language, now):
        """An opted-out number that writes hears once a day how to come back; otherwise nothing."""
        today = to_local(now, self.zone).date().isoformat()
        if self.kept(conversation).get("told_opted_out") == today:
            return Reply(silent=True, language=language)
        self.keep(conversation, told_opted_out=today)
        _ = self.gettext(language)
        return Reply(_("You have unsubscribed from Linli SMS. Reply START to subscribe again."),
                     language=language)

    def switch_language(self, conversation, resident, intent, argument):
        wanted = "en" if intent == "english" or argument.upper().startswith("EN") else "zh_Hans"
        if intent == "language" and not argument.upper().startswith(("EN", "ZH", "CN", "中")):
            wanted = conversation.language if resident is None else resident.language
        self.remember(conversation, language=wanted)
        _ = self.gettext(wanted)
        if resident is None:
            state = conversation.state or "awaiting_name"
            self.remember(conversation, state=state if state != "confirm_name" else "awaiting_name")
            return Reply(_("Language changed to English. Please reply with your name to register."),
                         language=wanted)
        Resident.update(language=wanted).where(Resident.id == resident.id).execute()
        return Reply(_("Language changed to English. Reply 0 for the menu."), language=wanted)

    # --- registration ------------------------------------------------------------------------

    def register(self, channel, address, conversation, intent, argument, cleaned, now):
        """Ask a newcomer for their name, read it back, ask for the community where there is a
        choice, then register; a command sent first is carried out afterwards."""
        language = conversation.language
        _ = self.gettext(language)
        choices = communities()
        if not choices:
            return Reply(_("Linli is not open in your community yet."), language=language)
        state, data = conversation.state, self.kept(conversation)
        if state == "confirm_name":
            yes = intent == "yes" or (number(cleaned) == 1)
            no = intent == "no" or (number(cleaned) == 2)
            if yes:
                if len(choices) == 1:
                    return self.finish_registration(channel, address, conversation, data["name"], choices[0], now)
                self.remember(conversation, state="awaiting_community")
                return self.ask_community(choices, language)
            if no:
                self.remember(conversation, state="awaiting_name")
                return Reply(_("Please reply with your name, for example: 陈桂兰"), language=language)
            state = "awaiting_name"  # they typed their name again
        if state == "awaiting_community":
            community = self.community_named(cleaned, choices, language)
            if community is not None:
                return self.finish_registration(channel, address, conversation, data.get("name", ""), community, now)
            return self.ask_community(choices, language)
        name = name_from(cleaned)
        explicit = clean(cleaned) != name  # "我叫陈桂兰" is a name even as the first message
        if state == "awaiting_name" or (name and explicit and intent is None):
            if name is None:
                if intent not in (None, "yes", "no", "menu", "help") and not data.get("then"):
                    self.keep(conversation, then=cleaned)
                self.remember(conversation, state="awaiting_name")
                return Reply(_("Please reply with your name, for example: 陈桂兰"), language=language)
            self.keep(conversation, name=name)
            self.remember(conversation, state="confirm_name")
            return self.confirm_name(name, language)
        kept = {"phone": data["phone"]} if data.get("phone") else {}
        if intent not in (None, "yes", "no", "menu", "help", "start"):
            kept["then"] = cleaned  # done once they are registered
        self.remember(conversation, state="awaiting_name", data=json.dumps(kept, ensure_ascii=False))
        return Reply(self.welcome(language), language=language)

    def welcome(self, language):
        """The first answer to a new number: what this is, the name please, and (in Chinese) how
        to switch to English, written in English so that an English reader finds it."""
        _ = self.gettext(language)
        text = _("Welcome to Linli, the community points service! Please reply with your name.")
        return text + (" For English, reply EN." if language == "zh_Hans" else "")

    def confirm_name(self, name, language):
        """Read a name back: 1 it is right, 2 write it again (buttons on Telegram)."""
        _ = self.gettext(language)
        return Reply(_("Your name: %(name)s. Reply 1 if it is right, 2 to write it again.", name=short(name)),
                     buttons=[Button(_("Right"), "1"), Button(_("Write it again"), "2")], language=language)

    @staticmethod
    def community_named(text, choices, language):
        """The community a newcomer means: its number (1, ２, 二), code, name or a unique part of it."""
        n = number(text)
        if n is not None:
            return choices[n - 1] if 1 <= n <= len(choices) else None
        wanted = clean(text).upper()
        if not wanted:
            return None
        for c in choices:
            if wanted in (c.code.upper(), c.name_zh.upper(), (c.name_en or "").upper()):
                return c
        matches = [c for c in choices
                   if wanted in c.name_zh.upper() or (len(wanted) > 2 and wanted in (c.name_en or "").upper())]
        return matches[0] if len(matches) == 1 else None

    def ask_community(self, choices, language):
        _ = self.gettext(language)
        lines = [f"{n}. {short(c.name(language))}" for n, c in enumerate(choices, 1)]
        buttons = [Button(c.name(language), c.code) for c in choices]
        return Reply(_("Which community do you live in? Reply with its number:"), lines, buttons,
                     language=language)

    def finish_registration(self, channel, address, conversation, name, community, now):
        language = conversation.language
        _ = self.gettext(language)
        data = self.kept(conversation)
        # On Telegram, a phone number the user shared as their own contact comes along.
        phone = address if channel == SMS else data.get("phone")
        telegram_id = int(address) if channel == TELEGRAM else None
        try:
            resident = register_resident(
                community, name, phone=phone, telegram_id=telegram_id, language=language,
                region=self.region,
            )
        except CommunityError as exc:
            self.remember(conversation, state="", data="{}")
            return Reply(self.error(exc, language), language=language)
        if conversation.opted_out:  # said STOP before registering
            contacts.set_opted_out(resident, channel, True)
        contacts.mark_verified(resident, channel)
        self.remember(conversation, state="", data="{}")
        welcome = _("Welcome, %(name)s! You are registered with %(community)s.", name=short(resident.display_name),
                    community=short(community.name(language)))
        if data.get("then"):  # what they asked for before registering
            intent, argument, cleaned = understand(data["then"])
            done = self.answer(channel, address, conversation, resident, intent, argument, cleaned, now)
            return Reply(welcome + "\n" + done.text if done.text else welcome, done.lines, done.buttons,
                         language=language, image=done.image)
        menu = self.do_menu(resident, "", now, conversation)
        return Reply(welcome, [menu.text, *menu.lines], menu.buttons, language=language)

    def link_telegram(self, telegram_id, phone, own_number):
        """Link a Telegram user to the resident with `phone`; only the sender's own number counts."""
        conversation = self.conversation(TELEGRAM, telegram_id)
        current = self.resident_for(TELEGRAM, telegram_id)
        language = current.language if current else conversation.language
        _ = self.gettext(language)
        if not own_number:
            return Reply(_("Please share your own phone number with the button."), language=language)
        resident = find_resident(phone=phone, region=self.region)
        if resident is None:
            if current is None:
                self.remember(conversation, state="awaiting_name", data=json.dumps({"phone": phone}))
                text = _("No resident has this number yet. Please reply with your name to register.")
                return Reply(text, language=language)
            return Reply(_("No resident has this number. Ask community staff to add it to your record."),
                         language=language)
        if current is not None and current.id == resident.id:
            return Reply(_("Your Telegram is already linked, %(name)s.", name=short(resident.display_name)),
                         language=language)
        if current is not None or resident.telegram_id is not None:
            return Reply(_("This number or this Telegram account belongs to another record. Please ask "
                           "community staff for help."), language=language)
        Resident.update(telegram_id=int(telegram_id)).where(
            (Resident.id == resident.id) & Resident.telegram_id.is_null()
        ).execute()
        contacts.mark_verified(resident, TELEGRAM)
        self.remember(conversation, state="", data="{}")
        _ = self.gettext(resident.language)
        return Reply(_("Linked! Welcome, %(name)s. Reply HELP for what you can do.",
                       name=short(resident.display_name)), language=resident.language)

    # --- what a registered resident can do ---------------------------------------------------

    def do_menu(self, resident, argument, now, conversation, before=""):
        """One SMS: the community, the balance, and what each number does."""
        language = resident.language
        _ = self.gettext(language)
        gap = "" if language == "zh_Hans" else " "
        choices = " ".join(f"{n}{gap}{_(label)}" for n, (_intent, label) in enumerate(MENU, 1))
        points = ledger.format_amount(balance_of(resident))
        community = resident.community
        office = _("Help from a person: %(phone)s", phone=community.phone) if community.phone else ""
        for name in (short(community.name(language), 8), short(community.name(language), 4)):
            text = _("%(community)s: you have %(points)s points. Reply a number: %(choices)s.",
                     community=name, points=points, choices=choices)
            if fits(gap.join(filter(None, [before, text, office])), 1):
                break
        if before and fits(f"{before}{gap}{text}", 1):
            text = f"{before}{gap}{text}"
        if office and fits(f"{text}{gap}{office}", 1):
            text = f"{text}{gap}{office}"
        self.offer(conversation, "menu", [intent for intent, _label in MENU])
        commands = {"list": "LIST", "mine": "MINE", "history": "HIST", "code": "REDEEM", "shop": "SHOP",
                    "rename": "RENAME", "report": "REPORT"}
        buttons = [Button(_(label), commands[intent]) for intent, label in MENU]
        lines = [_("Commands: /activities /mine /balance /history /shop /redeem /language")] if (
            conversation.channel == TELEGRAM) else []
        return Reply(text, lines, buttons, language=language)

    def do_unknown(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        return self.do_menu(resident, "", now, conversation,
                            before=_("Sorry, I did not understand that.") if argument else "")

    def do_choose(self, resident, argument, now, conversation):
        """A bare number: a check-in code on the day, or a choice from the last list or the menu."""
        _ = self.gettext(resident.language)
        if len(argument) == 4 and act.signed_up_today(resident, now):
            return self.do_here(resident, argument, now, conversation)
        shown = self.kept(conversation).get("list") or {"kind": "menu", "items": [i for i, _l in MENU]}
        n, items = int(argument), shown.get("items") or []
        if not 1 <= n <= len(items):
            return self.do_menu(resident, "", now, conversation,
                                before=_("There is no number %(n)s here.", n=n))
        item = items[n - 1]
        if shown["kind"] == "menu":
            return getattr(self, f"do_{item}")(resident, "", now, conversation)
        if shown["kind"] == "activities":
            return self.do_join(resident, item, now, conversation)
        if shown["kind"] == "mine":
            return self.ask_cancel(resident, item, conversation)
        if shown["kind"] == "goods":
            return self.goods_detail(resident, item)
        return self.do_menu(resident, "", now, conversation)

    def pick_activity(self, resident, argument, now, conversation, kind):
        """The activity a resident means: a code (A12), or a number from the list shown (or the
        list as it would be shown now). None when they named none."""
        argument = (argument or "").strip()
        if re.fullmatch(r"[A-Za-z]\d+", argument):
            return act.open_activity_by_code(argument)
        if not argument.isdigit() or not argument.isascii():
            return None
        codes = self.offered(conversation, kind)
        if codes is None:
            codes = ([a.code for a in act.upcoming_activities(resident.community, now=now)] if kind == "activities"
                     else [s.activity.code for s in act.signups_of(resident)])
        n = int(argument)
        if not 1 <= n <= len(codes):
            raise ActivityNotFound()
        return act.open_activity_by_code(codes[n - 1])

    def do_list(self, resident, argument, now, conversation, heading=None, state=""):
        _ = self.gettext(resident.language)
        upcoming = act.upcoming_activities(resident.community, now=now)
        if not upcoming:
            return Reply(_("No upcoming activities right now."), language=resident.language)
        lines = [f"{n}. {self.local(a.starts_at)} {short(a.title_for(resident.language))} "
                 f"({a.capacity - a.taken})" for n, a in enumerate(upcoming, 1)]
        buttons = [Button(_("Join %(code)s", code=a.code), f"JOIN {a.code}") for a in upcoming]
        self.offer(conversation, "activities", [a.code for a in upcoming], state)
        return Reply(heading or _("Upcoming activities (time, title, places left). Reply a number to sign up:"),
                     lines, buttons, language=resident.language)

    def do_join(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        activity = self.pick_activity(resident, argument, now, conversation, "activities")
        if activity is None and argument:
            return self.do_unknown(resident, argument, now, conversation)  # 报名 → 谢谢: not an activity
        if activity is None:
            return self.do_list(resident, "", now, conversation, state="awaiting_join",
                                heading=_("Which activity? Reply its number:"))
        signup = act.join(resident, activity, now=now)
        title = short(activity.title_for(resident.language))
        if signup.state == signup.WAITLISTED:
            text = _("%(code)s %(title)s is full: you are on the waitlist and will be told if a place "
                     "frees up.", code=activity.code, title=title)
        else:
            text = _("Signed up for %(code)s %(title)s, %(when)s at %(place)s. Reply CANCEL %(code)s "
                     "to cancel.", code=activity.code, title=title,
                     when=self.local(activity.starts_at), place=short(activity.place) or "-")
        return Reply(text, buttons=[Button(_("Cancel"), f"CANCEL {activity.code}")],
                     language=resident.language)

    def do_cancel(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        activity = self.pick_activity(resident, argument, now, conversation, "mine")
        if activity is None and argument:
            return self.do_unknown(resident, argument, now, conversation)
        if activity is None:
            return self.do_mine(resident, "", now, conversation, state="awaiting_cancel",
                                heading=_("Which sign-up do you want to cancel? Reply its number:"))
        act.cancel(resident, activity, now=now)
        self.keep(conversation, list=None)  # a stray "1" next must not join what was just given up
        return Reply(_("Your sign-up for %(code)s %(title)s is cancelled.", code=activity.code,
                       title=short(activity.title_for(resident.language))), language=resident.language)

    def ask_cancel(self, resident, code, conversation):
        _ = self.gettext(resident.language)
        activity = act.open_activity_by_code(code)
        self.keep(conversation, cancel=code)
        self.remember(conversation, state="confirm_cancel")
        return Reply(_("Cancel your sign-up for %(title)s, %(when)s? Reply 1 to cancel it, 2 to keep it.",
                       title=short(activity.title_for(resident.language)), when=self.local(activity.starts_at)),
                     buttons=[Button(_("Cancel"), "1"), Button(_("Keep it"), "2")], language=resident.language)

    def do_cancel_confirmed(self, resident, argument, now, conversation):
        return self.do_cancel(resident, self.kept(conversation).get("cancel", ""), now, conversation)

    def do_cancel_kept(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        return Reply(_("Your sign-up is kept. Reply 0 for the menu."), language=resident.language)

    def do_mine(self, resident, argument, now, conversation, heading=None, state=""):
        _ = self.gettext(resident.language)
        signups = act.signups_of(resident)
        if not signups:
            self.offer(conversation, "menu", [intent for intent, _label in MENU])
            return Reply(_("You have no sign-ups. Reply 1 for activities."), language=resident.language)
        states = {"signed_up": _("signed up"), "waitlisted": _("waitlisted"), "checked_in": _("checked in")}
        lines = [f"{n}. {self.local(s.activity.starts_at)} {short(s.activity.title_for(resident.language))} "
                 f"({states.get(s.state, s.state)})" for n, s in enumerate(signups, 1)]
        buttons = [Button(_("Cancel %(code)s", code=s.activity.code), f"CANCEL {s.activity.code}")
                   for s in signups if s.state != "checked_in"]
        self.offer(conversation, "mine", [s.activity.code for s in signups], state)
        return Reply(heading or _("Your sign-ups (reply a number to cancel one):"), lines, buttons,
                     language=resident.language)

    def do_here(self, resident, argument, now, conversation):
        """Check in with the activity's four digits; only digits count as a try."""
        _ = self.gettext(resident.language)
        digits = re.sub(r"\D", "", argument or "")
        if not digits or not digits.isascii():
            self.remember(conversation, state="awaiting_checkin")
            return Reply(_("Please reply with the 4-digit check-in code given at the activity."),
                         language=resident.language)
        signup = act.check_in(resident, digits, now=now)
        title = short(signup.activity.title_for(resident.language))
        return Reply(_("Checked in to %(title)s. Thank you!", title=title), language=resident.language)

    def do_rename(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        if argument and name_from(argument):
            return self.do_new_name(resident, argument, now, conversation)
        self.remember(conversation, state="renaming")
        return Reply(_("Your name is %(name)s. Please reply with the right name:", name=short(resident.display_name)),
                     language=resident.language)

    def do_new_name(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        name = name_from(argument)
        if name is None:
            self.remember(conversation, state="renaming")
            return Reply(_("Please reply with your name, for example: 陈桂兰"), language=resident.language)
        self.keep(conversation, name=name)
        self.remember(conversation, state="confirm_rename")
        return self.confirm_name(name, resident.language)

    def do_rename_confirmed(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        name = rename_self(resident, self.kept(conversation).get("name", ""))
        self.keep(conversation, name=None)
        return Reply(_("Your name is now %(name)s.", name=short(name)), language=resident.language)

    # --- reports (事事有回音) ----------------------------------------------------------------

    def do_report(self, resident, argument, now, conversation):
        """反映 and what is wrong: then its kind, by number; the reply gives the case number."""
        _ = self.gettext(resident.language)
        text = report_text(argument)
        if not text:
            self.remember(conversation, state="awaiting_report")
            return Reply(_("What is wrong, and where? Please describe it in one message."), language=resident.language)
        if len(text) > cases.MAX_TEXT:
            self.remember(conversation, state="awaiting_report")
            return Reply(self.error(ReportTooLong(), resident.language), language=resident.language)
        self.keep(conversation, report=text)
        self.remember(conversation, state="report_category")
        choices = " ".join(f"{n}{c.name(resident.language)}" if resident.language == "zh_Hans"
                           else f"{n} {c.name(resident.language)}"
                           for n, c in enumerate(cases.categories(resident.community_id), 1))
        return Reply(_("What kind of problem is it? Reply a number: %(choices)s", choices=choices),
                     language=resident.language)

    def do_report_category(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        kept = self.kept(conversation)
        if not kept.get("report"):
            return self.do_report(resident, "", now, conversation)
        kinds = cases.categories(resident.community_id)
        named = [n for n, c in enumerate(kinds, 1)
                 if argument and (c.name_zh[:2] in argument or (c.name_en and c.name_en.lower() in argument.lower()))]
        n = int(argument) if argument.isdigit() and argument.isascii() else (named[0] if named else 0)
        if not 1 <= n <= len(kinds):
            self.remember(conversation, state="report_category")
            return Reply(_("Please reply with the number of the kind, 1 to %(n)d.", n=len(kinds)),
                         language=resident.language)
        case = cases.report(resident, kinds[n - 1].code, kept["report"], photos=kept.get("photos", ()), now=now)
        self.keep(conversation, report=None, photos=None)
        return Reply(_("Recorded as no. %(case)s. You will hear back by %(when)s. Reply PROGRESS %(case)s to "
                       "follow it.", case=case.id, when=self.local(case.due_at)), language=resident.language)

    def photo(self, channel, address, data, caption="", *, now=None):
        """A photo, with its caption if any: kept for the report being made, or the start of one
        (its caption, or the next message, says what is wrong)."""
        resident = self.resident_for(channel, address)
        caption = " ".join((caption or "").split())
        if resident is None or resident.status == Resident.CLOSED:
            return self.handle(channel, address, caption or "HELP", now=now)
        _ = self.gettext(resident.language)
        try:
            photo = cases.keep_photo(resident, data)
        except CommunityError as exc:
            return Reply(self.error(exc, resident.language), language=resident.language)
        conversation = self.conversation(channel, address)
        earlier = self.kept(conversation).get("photos", []) if conversation.state in self.REPORTING else []
        self.keep(conversation, photos=[*earlier, photo][-cases.MAX_PHOTOS:])
        if conversation.state not in self.REPORTING:
            self.remember(conversation, state="awaiting_report")
        if caption:  # the report itself (反映 in it or not), or the kind asked for
            return self.handle(channel, address, caption, now=now)
        if earlier:  # the next photo of an album: the first one was answered
            return Reply(silent=True, language=resident.language)
        if conversation.state == "report_category":
            return self.do_report(resident, self.kept(conversation)["report"], now, conversation)
        return Reply(_("Got your photo. What is wrong, and where? Please describe it in one message."),
                     language=resident.language)

    def do_progress(self, resident, argument, now, conversation):
        """进度 2041: where the resident's case stands (进度 alone: their newest)."""
        _ = self.gettext(resident.language)
        number = cases.case_number(argument)
        case = cases.latest(resident) if not argument else Case.get_or_none(
            (Case.id == number) & (Case.reporter == resident.id)) if number is not None else None
        if case is None:
            return Reply(_("You have no report with that number. Reply REPORT and the problem to report one."),
                         language=resident.language)
        mine = case.reporter_id == resident.id
        while case.state == Case.MERGED:  # they follow the case it was merged into
            case, mine = case.duplicate_of, False
        when = self.local(case.due_at)
        said = {
            Case.RECEIVED: _("No. %(case)s is waiting to be taken on, by %(when)s.", case=case.id, when=when),
            Case.ACCEPTED: _("No. %(case)s is being dealt with, by %(when)s.", case=case.id, when=when),
            Case.HANDLED: _("No. %(case)s was dealt with. Is it solved? Reply 1 solved, 2 not solved.",
                            case=case.id) if mine else _("No. %(case)s was dealt with.", case=case.id),
            Case.CLOSED: _("No. %(case)s is closed.", case=case.id),
            Case.REFUSED: _("No. %(case)s was not taken up: %(reason)s", case=case.id, reason=short(case.reason, 40)),
        }[case.state]
        if case.state == Case.HANDLED and mine:
            self.keep(conversation, case=case.id)
            self.remember(conversation, state="verify_case")
        return Reply(said, language=resident.language)

    def _case_to_verify(self, resident, conversation):
        number = self.kept(conversation).get("case")
        case = Case.get_or_none((Case.id == number) & (Case.reporter == resident.id)) if number else None
        if case is None or case.state != Case.HANDLED:
            case = cases.waiting_for_answer(resident)
        return case

    def do_case_solved(self, resident, argument, now, conversation):
        return self._verify(resident, True, now, conversation)

    def do_case_unsolved(self, resident, argument, now, conversation):
        return self._verify(resident, False, now, conversation)

    def _verify(self, resident, solved, now, conversation):
        _ = self.gettext(resident.language)
        case = self._case_to_verify(resident, conversation)
        self.keep(conversation, case=None)
        if case is None:
            return self.do_menu(resident, "", now, conversation)
        case = cases.verify(case, solved, resident=resident, now=now, zone=self.zone)
        if not solved:
            return Reply(_("No. %(case)s is open again; we will deal with it by %(when)s.", case=case.id,
                           when=self.local(case.due_at)), language=resident.language)
        if case.points:
            return Reply(_("Thank you! No. %(case)s is closed. +%(points)s points. Balance: %(balance)s.",
                           case=case.id, points=ledger.format_amount(case.points),
                           balance=ledger.format_amount(ledger.balance(resident.account_id))),
                         language=resident.language)
        return Reply(_("Thank you! No. %(case)s is closed.", case=case.id), language=resident.language)

    def ask_verification(self, channel, address, case_id):
        """The reporter was just asked "is it solved?": their 1 or 2 answers it (unless they are in
        the middle of something else, which their 1 or 2 then answers)."""
        conversation = self.conversation(channel, address)
        if conversation.state:
            return
        self.keep(conversation, case=case_id)
        self.remember(conversation, state="verify_case")

    def do_language(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        return Reply(_("Reply 中文 for Chinese or EN for English."),
                     buttons=[Button("中文", "中文"), Button("English", "LANG EN")], language=resident.language)

    def do_balance(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        points = ledger.format_amount(balance_of(resident))
        text = _("Your balance: 1 point.") if points == "1" else _("Your balance: %(points)s points.", points=points)
        return Reply(text, language=resident.language)

    def do_history(self, resident, argument, now, conversation):
        """The passbook, newest first; 更多 pages further back (up to twenty lines)."""
        _ = self.gettext(resident.language)
        lines = ledger.history(resident.account_id, limit=HISTORY_LINES * HISTORY_PAGES)
        if not lines:
            return Reply(_("No postings yet."), language=resident.language)
        reversed_word = _("Reversed")
        rows = [  # an award is dated by the day of its activity, which the resident remembers
            f"{self.local(done_on(line) or line.created_at, '%m-%d')} {'+' if line.amount > 0 else ''}"
            f"{ledger.format_amount(line.amount)} {what_for(line, resident.language, reversed_word)[:24]} "
            f"= {ledger.format_amount(line.balance_after)}"
            for line in lines
        ]
        return Reply(_("Last postings (date, points, for, balance after):"), rows, language=resident.language)

    def do_shop(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        goods = goods_for(resident.community)
        if not goods:
            return Reply(_("The points supermarket has no goods listed yet."), language=resident.language)
        sold_out = _(" (sold out)")
        lines = [f"{n}. {short(g.name(resident.language))} {self.points(g.price, resident.language)}"
                 + ("" if g.stock > 0 else sold_out) for n, g in enumerate(goods, 1)]
        self.offer(conversation, "goods", [g.id for g in goods])
        return Reply(_("Goods at the points supermarket. Reply CODE for a counter code:"), lines,
                     language=resident.language)

    def goods_detail(self, resident, goods_id):
        _ = self.gettext(resident.language)
        goods = next((g for g in goods_for(resident.community) if g.id == goods_id), None)
        if goods is None:
            return Reply(_("The points supermarket has no goods listed yet."), language=resident.language)
        return Reply(_("%(goods)s: %(points)s, %(stock)s in stock. At the counter, reply CODE for a counter code.",
                       goods=short(goods.name(resident.language)), points=self.points(goods.price, resident.language),
                       stock=goods.stock), language=resident.language)

    def points(self, amount, language):
        """1 point, 2 points, 1.5 points; 1分 in Chinese."""
        _ = self.gettext(language)
        text = ledger.format_amount(amount)
        return _("1 point") if text == "1" else _("%(points)s points", points=text)

    def do_code(self, resident, argument, now, conversation):
        """Six digits to read out at the counter, where the clerk types the phone number."""
        _ = self.gettext(resident.language)
        code = issue_digit_code(resident, now=now)
        minutes = int(LIFETIME.total_seconds() // 60)
        return Reply(_("Your counter code: %(code)s. Tell the clerk your phone number and this code. "
                       "It works once, for %(minutes)d minutes.", code=code, minutes=minutes),
                     language=resident.language)

    def do_redeem(self, resident, argument, now, conversation):
        """A QR code to show at the counter (Telegram)."""
        _ = self.gettext(resident.language)
        code = issue_qr_code(resident, self._secret(), now=now)
        minutes = int(LIFETIME.total_seconds() // 60)
        return Reply(_("Show this QR code at the counter: %(code)s. It works once, for %(minutes)d minutes.",
                       code=code, minutes=minutes), language=resident.language, image=qr_png(code))

    def do_telegram(self, resident, argument, now, conversation):
        """A one-time code that links this resident's record to their Telegram account."""
        _ = self.gettext(resident.language)
        code = issue_qr_code(resident, self._secret(), now=now, kind=CounterCode.LINK)
        link = f"https://t.me/{self.bot_username}?start=link-{code}" if self.bot_username else f"/start link-{code}"
        return Reply(_("To use Linli in Telegram, open %(link)s (or send it to the Linli bot) within 10 "
                       "minutes.", link=link), language=resident.language)

    def link_by_code(self, telegram_id, code, now=None):
        """Link a Telegram user to the resident who asked for this link code by SMS."""
        current = self.resident_for(TELEGRAM, telegram_id)
        language = current.language if current else self.conversation(TELEGRAM, telegram_id).language
        try:
            row = find_qr_code(code, self._secret(), now=now, kind=CounterCode.LINK)
        except CommunityError as exc:
            return Reply(self.error(exc, language), language=language)
        resident = row.resident
        _ = self.gettext(resident.language)
        if current is not None and current.id == resident.id:
            return Reply(_("Your Telegram is already linked, %(name)s.", name=short(resident.display_name)),
                         language=resident.language)
        if current is not None or resident.telegram_id is not None:
            return Reply(_("This number or this Telegram account belongs to another record. Please ask "
                           "community staff for help."), language=language)
        with db.atomic():
            consume(row, now)
            Resident.update(telegram_id=int(telegram_id)).where(
                (Resident.id == resident.id) & Resident.telegram_id.is_null()
            ).execute()
            contacts.mark_verified(resident, TELEGRAM)
        return Reply(_("Linked! Welcome, %(name)s. Reply HELP for what you can do.",
                       name=short(resident.display_name)), language=resident.language)

    def _secret(self):
        if not self.code_secret:
            raise RuntimeError("the dialogue needs code_secret to sign one-time codes")
        return self.code_secret

