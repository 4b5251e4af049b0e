"""The channel-neutral dialogue: a resident's words in, one service call, a reply out.

Telegram and SMS are thin adapters over `Dialogue.handle`. Telegram buttons carry the same
command words a resident would type by SMS, so both channels run the same code path.
"""

import json
import unicodedata
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from babel.support import NullTranslations, Translations
from peewee import IntegrityError

import ledger
from catalog.codes import LIFETIME, consume, find_qr_code, issue_digit_code, issue_qr_code
from catalog.goods import goods_for
from catalog.models import CounterCode
from catalog.reports import what_for
from community import CommunityError, Resident
from community import activities as act
from community.errors import ResidentClosed
from community.people import communities, find_resident, register_resident
from ledger import db
from ledger.models import to_local, utcnow

from .models import Conversation
from .qr import qr_png
from .segments import fits

SMS, TELEGRAM = "sms", "telegram"
LANGUAGES = ("zh_Hans", "en")

# Command words: English (any case, any width) and Chinese. Each maps to one handler.
KEYWORDS = {
    "HELP": "help", "?": "help", "帮助": "help",
    "LIST": "list", "活动": "list",
    "JOIN": "join", "报名": "join",
    "CANCEL": "cancel", "取消": "cancel",
    "MINE": "mine", "我的": "mine",
    "HERE": "here", "签到": "here",
    "BAL": "balance", "BALANCE": "balance", "积分": "balance",
    "HIST": "history", "HISTORY": "history", "明细": "history",
    "SHOP": "shop", "商品": "shop",
    "TELEGRAM": "telegram", "绑定": "telegram",
    "CODE": "code", "兑换码": "code", "REDEEM": "redeem",
    "LANG": "language", "中文": "chinese", "ENGLISH": "english",
    "STOP": "stop", "UNSUBSCRIBE": "stop", "退订": "stop",
    "START": "start", "订阅": "start",
    "MORE": "more", "更多": "more",
}
_CHINESE_KEYWORDS = sorted((k for k in KEYWORDS if not k.isascii()), key=len, reverse=True)
MAX_TEXT = 1600
HISTORY_LINES = 5


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


def parse(text):
    """Split a message into (command, argument), folding case and full-width characters."""
    cleaned = unicodedata.normalize("NFKC", text or "")
    cleaned = "".join(ch for ch in cleaned if ch.isprintable() or ch.isspace())
    cleaned = " ".join(cleaned.split())[:MAX_TEXT]
    for word in _CHINESE_KEYWORDS:
        if cleaned.startswith(word):
            return KEYWORDS[word], cleaned[len(word):].strip()
    head, _, rest = cleaned.partition(" ")
    command = KEYWORDS.get(head.upper())
    if command is None:
        return None, cleaned
    return command, rest.strip()


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

    def conversation(self, channel, address):
        """The sender's conversation row, created on first contact (race-safe)."""
        same = (Conversation.channel == channel) & (Conversation.address == address)
        found = Conversation.get_or_none(same)
        if found is not None:
            return found
        try:
            with db.atomic():
                return Conversation.create(channel=channel, address=address)
        except IntegrityError:
            return Conversation.get(same)

    @staticmethod
    def remember(conversation, **changes):
        """Save changes to a conversation (its own sender only ever changes it)."""
        changes["updated_at"] = utcnow()
        Conversation.update(**changes).where(Conversation.id == conversation.id).execute()
        for key, value in changes.items():
            setattr(conversation, key, value)

    def has_phone(self, channel, address):
        """Tell whether the sender is a resident with a phone number on record."""
        resident = self.resident_for(channel, address)
        return bool(resident and resident.phone)

    def resident_for(self, channel, address):
        if channel == SMS:
            return find_resident(phone=address, region=self.region)
        return find_resident(telegram_id=int(address))

    # --- the entry point ---------------------------------------------------------------------

    def handle(self, channel, address, text, *, now=None):
        """Answer one message from `address` on `channel`."""
        now = now or utcnow()
        command, argument = parse(text)
        conversation = self.conversation(channel, address)
        resident = self.resident_for(channel, address)
        language = resident.language if resident else conversation.language

        # Opting out and back in come before everything else, in any state.
        if command == "stop":
            return self.stop(conversation, resident, language)
        if command == "start":
            return self.start(conversation, resident, language)
        if channel == SMS and (conversation.opted_out or (resident and resident.sms_opt_out)):
            return Reply(silent=True, language=language)
        closed = resident is not None and resident.status == Resident.CLOSED
        if command == "more" and not closed:  # what did not fit, in any state (registration too)
            return self.more(conversation, language)
        reply = self.answer(channel, address, conversation, resident, command, argument, text, now)
        return self.page(reply, conversation) if channel == SMS else reply

    def answer(self, channel, address, conversation, resident, command, argument, text, now):
        """The reply to one message, before SMS paging."""
        language = resident.language if resident else conversation.language
        if command in ("chinese", "english") or (command == "language" and argument):
            return self.switch_language(conversation, resident, command, argument)
        if resident is None:
            return self.register(channel, address, conversation, command, argument, language, text)
        if resident.status == Resident.CLOSED:
            return Reply(self.error(ResidentClosed(), language), language=language)
        if conversation.state:
            self.remember(conversation, state="")
        if channel == SMS and command == "redeem":
            command = "code"  # a QR image cannot travel by SMS: six digits instead
        handler = getattr(self, f"do_{command}", None) if command else None
        if handler is None:
            return self.do_help(resident, "", now, conversation, unknown=bool(text.strip()))
        try:
            return handler(resident, argument, now, conversation)
        except (CommunityError, ledger.LedgerError) as exc:
            return Reply(self.error(exc, resident.language), language=resident.language)

    # --- SMS paging --------------------------------------------------------------------------

    def page(self, reply, conversation):
        """Keep an SMS reply within the segment budget; lines that do not fit wait for MORE."""
        _ = self.gettext(reply.language)
        data = json.loads(conversation.data or "{}")
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
        waiting = json.loads(conversation.data or "{}").get("more") or []
        if not waiting:
            return Reply(_("Nothing more to show."), language=language)
        return self.page(Reply("", waiting, language=language), conversation)

    # --- opting out, language ---------------------------------------------------------------

    def stop(self, conversation, resident, language):
        _ = self.gettext(language)
        self.remember(conversation, opted_out=True)
        if resident is not None:
            Resident.update(sms_opt_out=True).where(Resident.id == resident.id).execute()
        return Reply(_("You will get no more SMS from Linli. Reply START to subscribe again."),
                     language=language)

    def start(self, conversation, resident, language):
        _ = self.gettext(language)
        self.remember(conversation, opted_out=False)
        if resident is not None:
            Resident.update(sms_opt_out=False).where(Resident.id == resident.id).execute()
        return Reply(_("Subscribed again. Reply HELP for what you can do."), language=language)

    def switch_language(self, conversation, resident, command, argument):
        wanted = "en" if command == "english" or argument.upper().startswith("EN") else "zh_Hans"
        if command == "language" and not argument.upper().startswith(("EN", "ZH", "CN", "中")):
            wanted = conversation.language if resident is None else resident.language
        self.remember(conversation, language=wanted)
        if resident is not None:
            Resident.update(language=wanted).where(Resident.id == resident.id).execute()
        _ = self.gettext(wanted)
        return Reply(_("Language changed to English. Reply HELP for what you can do."), language=wanted)

    # --- registration ------------------------------------------------------------------------

    def register(self, channel, address, conversation, command, argument, language, text=""):
        """Ask a newcomer for their name (and community, where there is a choice), then register."""
        _ = self.gettext(language)
        data = json.loads(conversation.data or "{}")
        choices = communities()
        if not choices:
            return Reply(_("Linli is not open in your community yet."), language=language)
        # A Chinese name may start like a command word ("我的名字是王伟"); "JOIN A1" is no name.
        folded = " ".join(unicodedata.normalize("NFKC", text).split())
        if command is not None and argument and not folded[:1].isascii():
            command, argument = None, folded
        if conversation.state == "awaiting_name" and command is None and argument:
            name = " ".join(argument.split())
            if not 1 <= len(name) <= 30:
                return Reply(_("Please reply with your name (at most 30 characters)."), language=language)
            if len(choices) == 1:
                return self.finish_registration(channel, address, conversation, name, choices[0], language)
            self.remember(conversation, state="awaiting_community", data=json.dumps({**data, "name": name}))
            return self.ask_community(choices, language)
        if conversation.state == "awaiting_community":
            picked = argument.strip().upper() if command is None else ""
            by_code = {c.code.upper(): c for c in choices}
            if picked.isdecimal() and picked.isascii() and 1 <= int(picked) <= len(choices):
                by_code[picked] = choices[int(picked) - 1]
            if picked in by_code:
                return self.finish_registration(
                    channel, address, conversation, data.get("name", ""), by_code[picked], language
                )
            return self.ask_community(choices, language)
        kept = {"phone": data["phone"]} if data.get("phone") else {}
        self.remember(conversation, state="awaiting_name", data=json.dumps(kept))
        return Reply(_("Welcome to Linli, the community points service. Please reply with your name "
                       "to register."), language=language)

    def ask_community(self, choices, language):
        _ = self.gettext(language)
        lines = [f"{n}. {short(c.name(language))}" for n, c in enumerate(choices, 1)]
        buttons = [Button(c.name(language), c.code) for c in choices]
        return Reply(_("Which community do you live in? Reply with its number:"), lines, buttons,
                     language=language)

    def finish_registration(self, channel, address, conversation, name, community, language):
        _ = self.gettext(language)
        # On Telegram, a phone number the user shared as their own contact comes along.
        phone = address if channel == SMS else json.loads(conversation.data or "{}").get("phone")
        telegram_id = int(address) if channel == TELEGRAM else None
        try:
            resident = register_resident(
                community, name, phone=phone, telegram_id=telegram_id, language=language,
                region=self.region,
            )
        except CommunityError as exc:
            self.remember(conversation, state="", data="{}")
            return Reply(self.error(exc, language), language=language)
        if conversation.opted_out:
            Resident.update(sms_opt_out=True).where(Resident.id == resident.id).execute()
        self.remember(conversation, state="", data="{}")
        return Reply(_("Welcome, %(name)s! You are registered with %(community)s. Reply HELP for what "
                       "you can do.", name=short(resident.display_name), community=short(community.name(language))),
                     language=language)

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
        self.remember(conversation, state="", data="{}")
        _ = self.gettext(resident.language)
        return Reply(_("Linked! Welcome, %(name)s. Reply HELP for what you can do.",
                       name=short(resident.display_name)), language=resident.language)

    # --- what a registered resident can do ---------------------------------------------------

    def do_help(self, resident, argument, now, conversation, unknown=False):
        _ = self.gettext(resident.language)
        text = _("Reply LIST for activities, JOIN A12 to sign up, CANCEL A12, MINE for your "
                 "sign-ups, HERE 1234 to check in, BAL for points, HIST for history, SHOP for goods, "
                 "CODE for a counter code, TELEGRAM to link Telegram, LANG ZH for Chinese, STOP to "
                 "unsubscribe.")
        if unknown:
            text = _("Sorry, I did not understand that.") + " " + text
        return Reply(text, language=resident.language)

    def do_list(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        upcoming = act.upcoming_activities(resident.community, now=now)
        if not upcoming:
            return Reply(_("No upcoming activities right now."), language=resident.language)
        lines = [f"{a.code} {self.local(a.starts_at)} {short(a.title)} ({a.capacity - a.taken})" for a in upcoming]
        buttons = [Button(_("Join %(code)s", code=a.code), f"JOIN {a.code}") for a in upcoming]
        return Reply(_("Upcoming activities (code, time, title, places left). Reply JOIN and the code:"),
                     lines, buttons, language=resident.language)

    def do_join(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        if not argument:
            return Reply(_("Which activity? Reply JOIN and its code, for example JOIN A12."),
                         language=resident.language)
        activity = act.open_activity_by_code(argument.split()[0])
        signup = act.join(resident, activity, now=now)
        if signup.state == signup.WAITLISTED:
            text = _("%(code)s %(title)s is full: you are on the waitlist and will be told if a place "
                     "frees up.", code=activity.code, title=short(activity.title))
        else:
            text = _("Signed up for %(code)s %(title)s, %(when)s at %(place)s. Reply CANCEL %(code)s "
                     "to cancel.", code=activity.code, title=short(activity.title),
                     when=self.local(activity.starts_at), place=short(activity.place) or "-")
        return Reply(text, buttons=[Button(_("Cancel"), f"CANCEL {activity.code}")],
                     language=resident.language)

    def do_cancel(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        if not argument:
            return Reply(_("Which activity? Reply CANCEL and its code, for example CANCEL A12."),
                         language=resident.language)
        activity = act.open_activity_by_code(argument.split()[0])
        act.cancel(resident, activity, now=now)
        return Reply(_("Your sign-up for %(code)s %(title)s is cancelled.", code=activity.code,
                       title=short(activity.title)), language=resident.language)

    def do_mine(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        signups = act.signups_of(resident)
        if not signups:
            return Reply(_("You have no sign-ups. Reply LIST for activities."), language=resident.language)
        states = {"signed_up": _("signed up"), "waitlisted": _("waitlisted"), "checked_in": _("checked in")}
        lines = [f"{s.activity.code} {self.local(s.activity.starts_at)} {short(s.activity.title)} "
                 f"({states.get(s.state, s.state)})" for s in signups]
        buttons = [Button(_("Cancel %(code)s", code=s.activity.code), f"CANCEL {s.activity.code}")
                   for s in signups if s.state != "checked_in"]
        return Reply(_("Your sign-ups:"), lines, buttons, language=resident.language)

    def do_here(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        signup = act.check_in(resident, argument, now=now)
        return Reply(_("Checked in to %(title)s. Thank you!", title=short(signup.activity.title)),
                     language=resident.language)

    def do_language(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        return Reply(_("Reply 中文 for Chinese or LANG EN for English."),
                     buttons=[Button("中文", "中文"), Button("English", "LANG EN")], language=resident.language)

    def do_balance(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        points = ledger.format_amount(ledger.balance(resident.account_id))
        return Reply(_("Your balance: %(points)s points.", points=points), language=resident.language)

    def do_history(self, resident, argument, now, conversation):
        _ = self.gettext(resident.language)
        lines = ledger.history(resident.account_id, limit=HISTORY_LINES)
        if not lines:
            return Reply(_("No postings yet."), language=resident.language)
        reversed_word = _("Reversed")
        rows = [
            f"{self.local(line.created_at, '%m-%d')} {'+' if line.amount > 0 else ''}"
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
        lines = [
            f"{short(g.name(resident.language))} {ledger.format_amount(g.price)} ({g.stock})" for g in goods
        ]
        return Reply(_("Goods (points, in stock). Reply CODE for a counter code:"), lines,
                     language=resident.language)

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
        return Reply(_("Linked! Welcome, %(name)s. Reply HELP for what you can do.",
                       name=short(resident.display_name)), language=resident.language)

    def _secret(self):
        if not self.code_secret:
            raise RuntimeError("the dialogue needs code_secret to sign one-time codes")
        return self.code_secret

