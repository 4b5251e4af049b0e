"""The channel-neutral dialogue in-process: parsing, every command on SMS and Telegram, SMS paging,
registration by SMS, and any text at all (a Hypothesis property)."""

import datetime
import inspect
import itertools
from dataclasses import dataclass
from pathlib import Path

import community_factory as make
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from botapp import sms
from botapp.dialogue import KEYWORDS, SMS, TELEGRAM, Dialogue, Reply, parse
from botapp.models import Conversation
from botapp.segments import segments
from catalog.checkout import checkout
from catalog.codes import find_digit_code, issue_digit_code
from catalog.goods import create_goods, receive_stock
from community import Resident, Signup
from community.awards import confirm_participation, report_deed
from community.models import Activity
from community.people import close_resident, create_community

ROOT = Path(__file__).resolve().parent.parent
PHONE = "+8613800138000"
TELEGRAM_ID = 424242
_addresses = itertools.count(1)


@pytest.fixture(scope="module")
def dialogue():
    # Configured like the entry points: with a secret for counter codes where the dialogue takes one.
    secret = {"code_secret": "test-code-secret"} if "code_secret" in inspect.signature(Dialogue).parameters else {}
    return Dialogue(str(ROOT / "translations"), **secret)


def messages(dialogue, language):
    """The dialogue's own messages in `language`, so wording edits in the catalogue break no test."""
    return dialogue.gettext(language)


@pytest.fixture
def world(db):
    place = make.build_place()
    return place, make.coordinator(place.north)


@dataclass
class Talk:
    """One registered resident talking to the dialogue on one channel."""

    dialogue: Dialogue
    channel: str
    address: str
    resident: Resident

    def __call__(self, text, now=None):
        reply = self.dialogue.handle(self.channel, self.address, text, now=now)
        assert isinstance(reply, Reply)
        if self.channel == SMS and not reply.silent:
            assert segments(reply.full_text()) <= 2, reply.full_text()
        return reply

    def fresh(self):
        return Resident.get_by_id(self.resident.id)

    def _(self, msgid, **params):
        """The dialogue's message in the resident's language (Chinese ones must be translated)."""
        language = self.fresh().language
        text = self.dialogue.gettext(language)(msgid, **params)
        assert language != "zh_Hans" or not text.isascii(), f"untranslated: {msgid}"
        return text

    def footer(self):
        return self._("Reply MORE for more.")

    def all_lines(self, first):
        """Every list line of a reply: on SMS, follow MORE (and 更多) until the last page."""
        lines, reply, words = list(first.lines), first, itertools.cycle(["MORE", "更多"])
        pages = 1
        while self.channel == SMS and reply.lines and reply.lines[-1] == self.footer():
            lines.pop()  # the footer is no list line
            reply = self(next(words))
            assert reply.text == ""  # a follow-up page is only the lines
            lines += reply.lines
            pages += 1
            assert pages < 30
        return lines, pages


@pytest.fixture(params=[SMS, TELEGRAM])
def talk(request, world, dialogue):
    place, _coordinator = world
    if request.param == SMS:
        resident = make.resident(place.north, "王阿姨", phone_number=PHONE)
        return Talk(dialogue, SMS, resident.phone, resident)
    resident = make.resident(place.north, "王阿姨", telegram_id=TELEGRAM_ID)
    return Talk(dialogue, TELEGRAM, str(TELEGRAM_ID), resident)


def codes_of(lines):
    return [line.split()[0] for line in lines]


# --- parse ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("ＪＯＩＮ　Ａ１２", ("join", "A12")),  # full-width letters, digits and space
    ("join a12", ("join", "a12")),
    ("Join   A12  ", ("join", "A12")),
    ("报名A12", ("join", "A12")),  # a Chinese keyword glued to its argument
    ("报名 A12", ("join", "A12")),
    ("报名ａ１２", ("join", "a12")),
    ("签到1234", ("here", "1234")),
    ("取消A3", ("cancel", "A3")),
    ("ｌｉｓｔ", ("list", "")),
    ("活动", ("list", "")),
    ("bal", ("balance", "")),
    ("Balance", ("balance", "")),
    ("明细", ("history", "")),
    ("？", ("help", "")),
    ("\u200bBAL\u200b", ("balance", "")),  # zero-width characters are dropped
    ("LANG en", ("language", "en")),
    ("中文", ("chinese", "")),
    ("english", ("english", "")),
    ("退订", ("stop", "")),
    ("订阅", ("start", "")),
    ("更多", ("more", "")),
    ("hello there", (None, "hello there")),
    ("JOINED A1", (None, "JOINED A1")),  # a keyword must be a whole word
    ("王阿姨", (None, "王阿姨")),
    ("  many\t\n spaces  ", (None, "many spaces")),
    ("", (None, "")),
    (None, (None, "")),
])
def test_parse_folds_case_and_width(text, expected):
    assert parse(text) == expected


# --- every command, on both channels --------------------------------------------------------


def test_help_in_english_words_and_chinese_words(talk):
    help_text = talk("HELP").full_text()
    assert "活动" in help_text and "报名" in help_text and "积分" in help_text  # Chinese by default
    for word in ("help", "帮助", "?", "？", "HELP me"):
        assert talk(word).full_text() == help_text
    unknown = talk("what is this").full_text()
    assert unknown == talk._("Sorry, I did not understand that.") + " " + help_text
    talk("LANG EN")
    english = talk("帮助").full_text()
    assert english.startswith("Reply LIST for activities, JOIN A12 to sign up")
    assert all(word in english for word in ("CANCEL", "MINE", "HERE", "BAL", "HIST", "STOP"))


def test_list_shows_the_residents_own_upcoming_activities(talk, world):
    place, coordinator = world
    mine = [make.activity(coordinator, place.north, title=f"扫楼道 {i}", starts_at=make.future(days=2, hours=i))
            for i in range(3)]
    elsewhere = make.activity(make.coordinator(place.east), place.east, title="East only")
    make.activities.cancel_activity(coordinator, mine[2], "rain")
    started = make.activity(coordinator, place.north, title="Already on",
                            starts_at=make.future(days=-1))
    for word in ("LIST", "活动", "ｌｉｓｔ"):
        reply = talk(word)
        assert reply.text == talk._("Upcoming activities (code, time, title, places left). "
                                    "Reply JOIN and the code:")
        lines, _pages = talk.all_lines(reply)
        assert codes_of(lines) == [mine[0].code, mine[1].code]
        assert "扫楼道 0" in lines[0] and lines[0].endswith("(5)")
        text = "\n".join(lines)
        assert elsewhere.code not in codes_of(lines) and "East only" not in text and started.title not in text
        if talk.channel == TELEGRAM:
            assert [b.command for b in reply.buttons] == [f"JOIN {mine[0].code}", f"JOIN {mine[1].code}"]


def test_an_empty_list_says_so(talk):
    assert talk("LIST").full_text() == talk._("No upcoming activities right now.")


def test_join_mine_and_cancel(talk, world):
    place, coordinator = world
    activity = make.activity(coordinator, place.north, title="种树", place="北门")
    other = make.activity(make.coordinator(place.east), place.east, title="东边的活动")
    _ = talk._

    assert talk("JOIN").full_text() == _("Which activity? Reply JOIN and its code, for example JOIN A12.")
    assert talk(f"JOIN {other.code}").full_text() == _("No such activity.")
    assert talk("报名Z99").full_text() == _("No such activity.")
    assert not Signup.select().where(Signup.resident == talk.resident.id).exists()
    assert talk("MINE").full_text() == _("You have no sign-ups. Reply LIST for activities.")

    joined = talk(f"报名{activity.code.lower()}")
    assert joined.full_text() == _(
        "Signed up for %(code)s %(title)s, %(when)s at %(place)s. Reply CANCEL %(code)s to cancel.",
        code=activity.code, title="种树", when=talk.dialogue.local(activity.starts_at), place="北门")
    assert [b.command for b in joined.buttons] == [f"CANCEL {activity.code}"]
    signup = Signup.get((Signup.resident == talk.resident.id) & (Signup.activity == activity.id))
    assert signup.state == Signup.SIGNED_UP
    assert talk(f"JOIN {activity.code}").full_text() == joined.full_text()  # joining twice: one seat
    assert Signup.select().where(Signup.resident == talk.resident.id).count() == 1
    assert Activity.get_by_id(activity.id).taken == 1

    for word in ("MINE", "我的"):
        mine = talk(word)
        assert mine.text == _("Your sign-ups:")
        assert mine.lines == [f"{activity.code} {talk.dialogue.local(activity.starts_at)} 种树 ({_('signed up')})"]

    cancelled = talk(f"取消 {activity.code}")
    assert cancelled.full_text() == _("Your sign-up for %(code)s %(title)s is cancelled.", code=activity.code,
                                      title="种树")
    assert Signup.get_by_id(signup.id).state == Signup.CANCELLED
    assert talk(f"CANCEL {activity.code}").full_text() == _("You are not signed up for this activity.")
    assert talk("CANCEL").full_text() == _("Which activity? Reply CANCEL and its code, for example CANCEL A12.")
    assert talk("MINE").full_text() == _("You have no sign-ups. Reply LIST for activities.")


def test_check_in_with_the_code_on_the_day(talk, world):
    place, coordinator = world
    activity = make.activity(coordinator, place.north, title="敬老院")
    talk(f"JOIN {activity.code}")
    wrong = talk._("That check-in code does not match an activity you are signed up for today.")
    on_the_day = activity.starts_at - datetime.timedelta(hours=1)
    assert talk(f"HERE {activity.checkin_code}").full_text() == wrong  # two days early
    other_code = "0000" if activity.checkin_code != "0000" else "0001"
    assert talk(f"HERE {other_code}", now=on_the_day).full_text() == wrong
    signup = Signup.get(Signup.resident == talk.resident.id)
    assert signup.state == Signup.SIGNED_UP

    reply = talk(f"签到{activity.checkin_code}", now=on_the_day)
    assert reply.full_text() == talk._("Checked in to %(title)s. Thank you!", title="敬老院")
    assert Signup.get_by_id(signup.id).state == Signup.CHECKED_IN
    assert talk("MINE").lines[0].endswith(f"({talk._('checked in')})")
    assert talk(f"HERE {activity.checkin_code}", now=on_the_day).full_text() == reply.full_text()


def test_balance_and_the_last_five_postings(talk, world):
    _place, coordinator = world
    assert talk("BAL").full_text() == talk._("Your balance: %(points)s points.", points="0")
    assert talk("HIST").full_text() == talk._("No postings yet.")
    for n in range(7):
        confirm_participation(coordinator, report_deed(coordinator, talk.resident, "volunteering", f"deed {n}"))
    for word in ("BAL", "积分", "balance"):
        assert talk(word).full_text() == talk._("Your balance: %(points)s points.", points="7")
    for word in ("HIST", "明细"):
        reply = talk(word)
        assert reply.text == talk._("Last postings (date, points, for, balance after):")
        lines, _pages = talk.all_lines(reply)
        assert len(lines) == 5
        assert [line.rsplit(" = ", 1)[1] for line in lines] == ["7", "6", "5", "4", "3"]  # balance after
        assert [f"deed {n}" in line for n, line in zip(range(6, 1, -1), lines, strict=True)] == [True] * 5
        assert all(" +1 " in line for line in lines)
        assert all("志愿服务 deed" in line for line in lines), lines  # the rule's name, not "volunteering v1"


def test_the_passbook_speaks_the_residents_language(talk, world):
    place, coordinator = world
    deed = report_deed(coordinator, talk.resident, "rescue", "救人")
    confirm_participation(coordinator, deed)
    confirm_participation(make.coordinator(place.north), Signup.get_by_id(deed.id))
    soap = create_goods(coordinator, place.north, "肥皂", "Soap", 100)
    receive_stock(coordinator, soap, 5)
    resident = talk.fresh()
    checkout(make.clerk(place.north), find_digit_code(resident, issue_digit_code(resident)), [(soap.id, 1)],
             checkout_key="hist")
    assert talk("LANG EN").language == "en"
    lines, _pages = talk.all_lines(talk("HIST"))
    assert "Soap×1" in lines[0] and "Rescue 救人" in lines[1], lines
    talk("中文")
    lines, _pages = talk.all_lines(talk("明细"))
    assert "肥皂×1" in lines[0] and "救援 救人" in lines[1], lines


def test_switching_languages(talk):
    assert talk("LANG EN").full_text() == "Language changed to English. Reply HELP for what you can do."
    assert talk.fresh().language == "en"
    assert talk("BAL").full_text() == "Your balance: 0 points."
    chinese = talk("中文")
    assert talk.fresh().language == "zh_Hans" and chinese.language == "zh_Hans"
    assert chinese.full_text() == talk._("Language changed to English. Reply HELP for what you can do.")
    assert talk("BAL").full_text() == talk._("Your balance: %(points)s points.", points="0") != (
        "Your balance: 0 points.")
    talk("ENGLISH")
    assert talk.fresh().language == "en"
    menu = talk("LANG")  # no argument: the choice, nothing changes
    assert menu.full_text() == "Reply 中文 for Chinese or LANG EN for English."
    assert [b.command for b in menu.buttons] == ["中文", "LANG EN"]
    assert talk.fresh().language == "en"
    talk("lang zh")
    assert talk.fresh().language == "zh_Hans"
    assert Conversation.get(Conversation.address == talk.address).language == "zh_Hans"


@pytest.mark.parametrize("stop, start", [("STOP", "START"), ("退订", "订阅"), ("unsubscribe", "start")])
def test_stop_silences_sms_until_start(world, dialogue, stop, start):
    place, coordinator = world
    resident = make.resident(place.north, phone_number=PHONE)
    activity = make.activity(coordinator, place.north)
    talk = Talk(dialogue, SMS, PHONE, resident)
    assert talk(stop).full_text() == talk._("You will get no more SMS from Linli. Reply START to subscribe again.")
    assert talk.fresh().sms_opt_out
    for text in ("BAL", "HELP", "帮助", "LIST", "MORE", f"JOIN {activity.code}", "hello", "LANG EN", "中文", ""):
        reply = talk(text)
        assert reply.silent and reply.full_text() == ""
    assert not Signup.select().exists()  # nothing happened while silent
    assert talk.fresh().language == "zh_Hans"
    assert talk(start).full_text() == talk._("Subscribed again. Reply HELP for what you can do.")
    assert not talk.fresh().sms_opt_out
    assert talk("BAL").full_text() == talk._("Your balance: %(points)s points.", points="0")


def test_stop_on_telegram_stops_sms_but_telegram_still_answers(world, dialogue):
    place, _coordinator = world
    resident = make.resident(place.north, telegram_id=TELEGRAM_ID)
    talk = Talk(dialogue, TELEGRAM, str(TELEGRAM_ID), resident)
    talk("STOP")
    assert talk.fresh().sms_opt_out
    assert talk("BAL").full_text() == talk._("Your balance: %(points)s points.", points="0")


# --- paging on SMS ------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["zh_Hans", "en"])
def test_a_long_list_pages_with_more_within_two_segments(world, dialogue, language):
    place, coordinator = world
    resident = make.resident(place.north, phone_number=PHONE, language=language)
    activities = [
        make.activity(coordinator, place.north, title=f"社区活动 第{i}场 扫楼道和种树",
                      starts_at=make.future(days=2, hours=i))
        for i in range(15)
    ]
    talk = Talk(dialogue, SMS, PHONE, resident)  # Talk checks every reply fits two segments
    first = talk("LIST")
    assert first.lines[-1] == talk.footer()
    lines, pages = talk.all_lines(first)
    assert pages >= 3
    assert sorted(codes_of(lines)) == sorted(a.code for a in activities)  # each exactly once
    assert len(codes_of(lines)) == len(activities)
    assert codes_of(lines) == [a.code for a in activities]  # soonest first, in order
    nothing = talk._("Nothing more to show.")
    assert talk("MORE").full_text() == nothing
    assert talk("更多").full_text() == nothing

    talk("活动")  # a fresh listing starts again at the top ...
    talk("BAL")  # ... and any reply that fits forgets what was waiting
    assert talk("MORE").full_text() == nothing


def test_telegram_gets_the_whole_list_at_once(world, dialogue):
    place, coordinator = world
    resident = make.resident(place.north, telegram_id=TELEGRAM_ID)
    activities = [make.activity(coordinator, place.north, starts_at=make.future(days=2, hours=i))
                  for i in range(15)]
    talk = Talk(dialogue, TELEGRAM, str(TELEGRAM_ID), resident)
    reply = talk("LIST")
    assert codes_of(reply.lines) == [a.code for a in activities]
    assert len(reply.buttons) == 15
    assert talk("MORE").full_text() == talk._("Nothing more to show.")


# --- registration -------------------------------------------------------------------------


def test_a_new_sms_number_registers_with_a_name_and_the_community_number(world, dialogue):
    _ = messages(dialogue, "zh_Hans")
    ids = itertools.count(1)

    def text(body):
        return sms.receive(dialogue, f"SM{next(ids)}", "138 0013 8000", body)

    assert text("你好") == _("Welcome to Linli, the community points service. Please reply with your name "
                           "to register.")
    choices = text("王阿姨").splitlines()
    assert choices[0] == _("Which community do you live in? Reply with its number:")
    assert choices[1:] == ["1. 东社区", "2. 北社区", "3. 南社区"]
    assert text("9") == "\n".join(choices)  # not a choice: asked again
    assert not Resident.select().exists()
    assert text("２") == _("Welcome, %(name)s! You are registered with %(community)s. Reply HELP for what "
                          "you can do.", name="王阿姨", community="北社区")
    resident = Resident.get()
    assert (resident.phone, resident.display_name, resident.community.code, resident.language) == (
        PHONE, "王阿姨", "N1", "zh_Hans")
    conversation = Conversation.get(Conversation.address == PHONE)
    assert (conversation.channel, conversation.state, conversation.data) == (SMS, "", "{}")
    assert text("BAL") == _("Your balance: %(points)s points.", points="0")


def test_registration_by_community_code_in_the_conversations_language(world, dialogue):
    address = "+8613900139000"

    def handle(body):
        reply = dialogue.handle(SMS, address, body)
        assert segments(reply.full_text()) <= 2
        return reply.full_text()

    assert handle("ENGLISH") == "Language changed to English. Reply HELP for what you can do."
    assert handle("hi") == "Welcome to Linli, the community points service. Please reply with your name to register."
    assert handle("x" * 31) == "Please reply with your name (at most 30 characters)."
    assert handle("Bob  Smith").startswith("Which community do you live in?")
    assert handle("s1") == "Welcome, Bob Smith! You are registered with South. Reply HELP for what you can do."
    resident = Resident.get(Resident.phone == address)
    assert (resident.display_name, resident.community.code, resident.language) == ("Bob Smith", "S1", "en")


def test_a_telegram_user_registers_with_the_telegram_id(world, dialogue):
    _ = messages(dialogue, "zh_Hans")
    address = "777000111"
    assert dialogue.handle(TELEGRAM, address, "/start").full_text() == _(
        "Welcome to Linli, the community points service. Please reply with your name to register.")
    community = dialogue.handle(TELEGRAM, address, "李四")
    assert [b.command for b in community.buttons] == ["E1", "N1", "S1"]
    welcome = dialogue.handle(TELEGRAM, address, community.buttons[2].command)  # the button sends the code
    assert "李四" in welcome.full_text() and "南社区" in welcome.full_text()
    resident = Resident.get(Resident.telegram_id == 777000111)
    assert (resident.display_name, resident.phone, resident.community.code) == ("李四", None, "S1")


def test_with_one_community_there_is_no_question(db, dialogue):
    _ = messages(dialogue, "zh_Hans")
    assert dialogue.handle(SMS, PHONE, "hi").full_text() == _("Linli is not open in your community yet.")
    create_community("ONLY", "独一社区", "The Only One")
    dialogue.handle(SMS, PHONE, "hi")
    reply = dialogue.handle(SMS, PHONE, "张三")
    assert "张三" in reply.full_text() and "独一社区" in reply.full_text()
    assert Resident.get(Resident.phone == PHONE).community.code == "ONLY"


def test_a_closed_resident_gets_the_closed_message(talk, world):
    place, coordinator = world
    activity = make.activity(coordinator, place.north)
    close_resident(coordinator, talk.resident)
    closed = talk._("This resident's account is closed.")
    for text in ("BAL", "LIST", "HELP", f"JOIN {activity.code}", "HIST", "MORE", "hello", "王阿姨", "1"):
        assert talk(text).full_text() == closed
    assert not Signup.select().exists()
    assert Resident.select().count() == 1  # no second registration
    assert talk.fresh().status == Resident.CLOSED


@pytest.mark.parametrize("choice", ["⓵", "፩"])
def test_an_odd_digit_as_the_community_choice_is_asked_again(world, dialogue, choice):
    dialogue.handle(SMS, PHONE, "hi")
    dialogue.handle(SMS, PHONE, "王阿姨")
    reply = dialogue.handle(SMS, PHONE, choice)
    assert isinstance(reply, Reply) and reply.full_text()


def test_the_community_question_fits_two_segments_with_many_communities(world, dialogue):
    place, _coordinator = world
    for i in range(12):
        create_community(f"C{i:02d}", f"幸福里第{i}社区居民委员会", f"Happy Lane {i}", parent=place.street)
    dialogue.handle(SMS, PHONE, "hi")
    reply = dialogue.handle(SMS, PHONE, "王阿姨")
    assert segments(reply.full_text()) <= 2, reply.full_text()


def test_the_english_join_reply_fits_two_segments_with_emoji_titles(world, dialogue):
    place, coordinator = world
    resident = make.resident(place.north, phone_number=PHONE, language="en")
    activity = make.activity(coordinator, place.north, title="🎉" * 30, place="🏠" * 30)
    reply = dialogue.handle(SMS, resident.phone, f"JOIN {activity.code}")
    assert Signup.get(Signup.resident == resident.id).state == Signup.SIGNED_UP
    assert segments(reply.full_text()) <= 2, reply.full_text()


# --- any text at all -------------------------------------------------------------------------

SPECIALS = ["\x00", "\u202eBAL", "JOIN \u200b", "报名", "JOIN " + "9" * 1500, "😀" * 800, "e\u0301" * 700,
            "MORE", "LANG", "LANG \x00EN", "\u202e\u200b\x00", "STOP", "START", "1", "n1", "ﷺ" * 200]
ANY_TEXT = st.one_of(
    st.text(max_size=1600),
    st.text(alphabet=st.characters(categories=["Cf", "Mn", "So", "Lo", "Zs", "Nd", "No", "Cc"]), max_size=400),
    st.builds(lambda word, gap, rest: word + gap + rest, st.sampled_from(sorted(KEYWORDS)),
              st.sampled_from(["", " ", "\u3000", "\u200b", "\x00"]), st.text(max_size=100)),
    st.sampled_from(SPECIALS),
)
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def check(reply, channel):
    assert isinstance(reply, Reply)
    text = reply.full_text()
    assert isinstance(text, str) and "Traceback" not in text
    assert reply.silent or text  # never an empty message
    if channel == SMS and not reply.silent:
        assert segments(text) <= 2, text
    for button in reply.buttons:
        assert button.label and button.command


@pytest.fixture
def regulars(world):
    """One registered resident per channel, with an activity they could join."""
    place, coordinator = world
    make.activity(coordinator, place.north, title="扫楼道")
    return {
        SMS: make.resident(place.north, phone_number=PHONE),
        TELEGRAM: make.resident(place.north, telegram_id=TELEGRAM_ID),
    }


def reset(regulars, language):
    ids = [r.id for r in regulars.values()]
    Resident.update(sms_opt_out=False, language=language).where(Resident.id.in_(ids)).execute()
    Conversation.update(opted_out=False, state="", data="{}").execute()


def newcomer(dialogue, channel, language, state):
    """A fresh unregistered address, brought to `state` of the registration."""
    n = next(_addresses)
    address = f"+86139{n:08d}" if channel == SMS else str(10**9 + n)
    if language == "en":
        dialogue.handle(channel, address, "ENGLISH")
    if state in ("awaiting_name", "awaiting_community"):
        dialogue.handle(channel, address, "hi")
    if state == "awaiting_community":
        dialogue.handle(channel, address, "Someone")
    conversation = Conversation.get_or_none((Conversation.channel == channel) & (Conversation.address == address))
    assert (conversation.state if conversation else "") == state
    return address


@FUZZ
@given(text=ANY_TEXT, language=st.sampled_from(["zh_Hans", "en"]),
       state=st.sampled_from(["", "awaiting_name", "awaiting_community"]))
@example(text="⓵", language="en", state="awaiting_name")
@example(text="JOIN A1", language="zh_Hans", state="awaiting_community")
def test_any_text_gets_a_reply_that_fits(dialogue, regulars, text, language, state):
    reset(regulars, language)
    for channel in (SMS, TELEGRAM):
        address = regulars[channel].phone if channel == SMS else str(TELEGRAM_ID)
        check(dialogue.handle(channel, address, text), channel)
        check(dialogue.handle(channel, newcomer(dialogue, channel, language, state), text), channel)


@FUZZ
@given(data=st.one_of(st.text(max_size=64), st.sampled_from(
    ["JOIN A1", "CANCEL A1", "LANG EN", "中文", "N1", "E1", "MORE", "", "JOIN " + "\x00" * 59])),
    state=st.sampled_from(["", "awaiting_name", "awaiting_community"]))
def test_any_telegram_button_data_gets_a_reply(dialogue, regulars, data, state):
    reset(regulars, "zh_Hans")
    check(dialogue.handle(TELEGRAM, str(TELEGRAM_ID), data), TELEGRAM)
    check(dialogue.handle(TELEGRAM, newcomer(dialogue, TELEGRAM, "zh_Hans", state), data), TELEGRAM)
