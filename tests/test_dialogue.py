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
from botapp.dialogue import SMS, TELEGRAM, Dialogue, Reply, parse
from botapp.grammar import INTENTS
from botapp.models import Conversation
from botapp.segments import segments
from catalog.checkout import checkout
from catalog.codes import find_digit_code, issue_digit_code
from catalog.goods import create_goods, receive_stock
from community import Contact, Resident, Signup, contacts
from community.awards import confirm_participation, report_deed
from community.models import Activity, CheckInFailure, Community
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


def numbers_of(lines):
    return [int(line.split(".")[0]) for line in lines]


# --- parse ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("ＪＯＩＮ　Ａ１２", ("join", "A12")),  # full-width letters, digits and space
    ("join a12", ("join", "a12")),
    ("Join   A12  ", ("join", "A12")),
    ("报名A12", ("join", "A12")),  # a Chinese keyword glued to its argument
    ("报名 A12", ("join", "A12")),
    ("报名：A4", ("join", "A4")),
    ("报名,A4", ("join", "A4")),
    ("报名ａ１２", ("join", "a12")),
    ("我要报名", ("join", "")),
    ("报名参加", ("join", "")),
    ("报名参加第2个活动", ("join", "2")),
    ("JOIN please", ("join", "")),
    ("报明A3", ("join", "A3")),  # a homophone typo
    ("jion a1", ("join", "a1")),  # a latin typo
    ("报名 2", ("join", "2")),
    ("报名第二个", ("join", "2")),
    ("签到1234", ("here", "1234")),
    ("签到码 6074", ("here", "6074")),
    ("签到", ("here", "")),
    ("取消A3", ("cancel", "A3")),
    ("取消 A19", ("cancel", "A19")),
    ("cancle A3", ("cancel", "A3")),
    ("ｌｉｓｔ", ("list", "")),
    ("活动", ("list", "")),
    ("有什么活动", ("list", "")),
    ("bal", ("balance", "")),
    ("Balance", ("balance", "")),
    ("查积分", ("balance", "")),
    ("余额", ("balance", "")),
    ("我有多少分", ("balance", "")),
    ("积分多少？", ("balance", "")),
    ("我的积分", ("balance", "")),  # not the sign-ups: the longest word wins
    ("分数", ("balance", "")),
    ("我有几分", ("balance", "")),
    ("我的报名", ("mine", "")),
    ("我的积份", ("balance", "")),  # a typo in the longer word: not the sign-ups of 我的
    ("我报了啥", ("mine", "啥")),
    ("有啥活动", ("list", "")),
    ("我的分还剩多少", ("balance", "")),
    ("能换点啥", ("shop", "")),
    ("明细", ("history", "")),
    ("？", ("help", "")),
    ("帮助", ("help", "")),
    ("菜单", ("menu", "")),
    ("\u200bBAL\u200b", ("balance", "")),  # zero-width characters are dropped
    ("LANG en", ("language", "en")),
    ("中文", ("chinese", "")),
    ("english", ("english", "")),
    ("EN", ("english", "")),
    ("退订", ("stop", "")),
    ("取消订阅", ("stop", "")),  # opting out, not cancelling a sign-up
    ("TD", ("stop", "")),
    ("t", ("stop", "")),
    ("不要再发了", ("stop", "了")),
    ("订阅", ("start", "")),
    ("更多", ("more", "")),
    ("改名", ("rename", "")),
    ("兑换码", ("code", "")),
    ("好的", ("yes", "")),
    ("hello there", (None, "hello there")),
    ("你好", (None, "你好")),  # no "好" inside a greeting
    ("谢谢", (None, "谢谢")),
    ("JOINED A1", (None, "JOINED A1")),  # a latin keyword must be a whole word
    ("王阿姨", (None, "王阿姨")),
    ("  many\t\n spaces  ", (None, "many spaces")),
    ("", (None, "")),
    (None, (None, "")),
])
def test_the_grammar_understands_what_people_type(text, expected):
    assert parse(text) == expected


@settings(max_examples=200, deadline=None)
@given(word=st.sampled_from(["报名", "查积分", "余额", "明细", "取消订阅", "签到码", "兑换码", "菜单"]),
       before=st.sampled_from(["", " ", "　", "，", "请", "我要", "【", "…"]),
       after=st.sampled_from(["", " ", "！", "。", "?", "~", "　", "吧"]),
       wide=st.booleans())
def test_spacing_punctuation_and_width_do_not_change_the_intent(word, before, after, wide):
    expected = parse(word)[0]
    text = before + word + after
    if wide:
        text = text.replace(" ", "\u3000")
    assert parse(text)[0] == expected, text


# --- every command, on both channels --------------------------------------------------------


def test_the_menu_is_one_sms_with_the_balance_and_numbered_choices(talk, world):
    place, _coordinator = world
    Community.update(phone="0594-2345678").where(Community.id == place.north.id).execute()
    menu = talk("菜单").full_text()
    assert menu.startswith("【北社区】您有0分。") and "1活动" in menu and "6改名" in menu
    assert "人工帮助：0594-2345678" in menu
    if talk.channel == SMS:
        assert segments(menu) == 1
    assert "人工帮助：0594-2345678" in menu and "。人工" in menu  # no latin space between Chinese sentences
    for word in ("0", "帮助", "help", "?", "？", "MENU", "０"):
        assert talk(word).full_text() == menu
    for word in ("谢谢", "what is this", "1 2 3 go"):  # not understood: the menu, and no latin list
        unknown = talk(word).full_text()
        assert unknown.endswith(menu) and "LIST" not in unknown
        if talk.channel == SMS:
            assert segments(unknown) == 1
    talk("EN")
    english = talk("menu").full_text()
    assert english.startswith("North: you have 0 points. Reply a number: 1 activities 2 my sign-ups")
    if talk.channel == SMS:
        assert segments(english) == 1


def test_list_shows_the_residents_own_upcoming_activities(talk, world):
    place, coordinator = world
    mine = [make.activity(coordinator, place.north, title=f"扫楼道 {i}", starts_at=make.future(days=2, hours=i))
            for i in range(3)]
    elsewhere = make.activity(make.coordinator(place.east), place.east, title="East only")
    make.activities.cancel_activity(coordinator, mine[2], "rain")
    started = make.activity(coordinator, place.north, title="Already on",
                            starts_at=make.future(days=-1))
    for word in ("LIST", "活动", "ｌｉｓｔ", "1"):  # 1 is the menu's first choice
        if word == "1":
            talk("菜单")
        reply = talk(word)
        assert reply.text == talk._("Upcoming activities (time, title, places left). Reply a number to sign up:")
        lines, _pages = talk.all_lines(reply)
        assert [line.split(".")[0] for line in lines] == ["1", "2"]
        assert "扫楼道 0" in lines[0] and "扫楼道 1" in lines[1] and lines[0].endswith("(5)")
        text = "\n".join(lines)
        assert "East only" not in text and started.title not in text and elsewhere.code not in text
        if talk.channel == TELEGRAM:
            assert [b.command for b in reply.buttons] == [f"JOIN {mine[0].code}", f"JOIN {mine[1].code}"]


def test_an_empty_list_says_so(talk):
    assert talk("LIST").full_text() == talk._("No upcoming activities right now.")


def test_join_mine_and_cancel(talk, world):
    place, coordinator = world
    activity = make.activity(coordinator, place.north, title="种树", place="北门")
    other = make.activity(make.coordinator(place.east), place.east, title="东边的活动")
    _ = talk._

    asked = talk("JOIN")  # which one? the list, numbered
    assert asked.text == _("Which activity? Reply its number:") and asked.lines[0].startswith("1. ")
    assert talk(f"JOIN {other.code}").full_text() == _("No such activity.")
    assert talk("报名Z99").full_text() == _("No such activity.")
    assert talk("报名 7").full_text() == _("No such activity.")
    assert not Signup.select().where(Signup.resident == talk.resident.id).exists()
    assert talk("MINE").full_text() == _("You have no sign-ups. Reply 1 for activities.")

    joined = talk(f"报名{activity.code.lower()}")
    assert joined.full_text() == _(
        "Signed up for %(code)s %(title)s, %(when)s at %(place)s. Reply CANCEL %(code)s to cancel.",
        code=activity.code, title="种树", when=talk.dialogue.local(activity.starts_at), place="北门")
    assert [b.command for b in joined.buttons] == [f"CANCEL {activity.code}"]
    signup = Signup.get((Signup.resident == talk.resident.id) & (Signup.activity == activity.id))
    assert signup.state == Signup.SIGNED_UP
    assert talk(f"JOIN {activity.code}").full_text() == joined.full_text()  # joining twice: one seat
    assert talk("报名 1").full_text() == joined.full_text()  # by its number in the list
    assert Signup.select().where(Signup.resident == talk.resident.id).count() == 1
    assert Activity.get_by_id(activity.id).taken == 1

    for word in ("MINE", "我的", "我的报名"):
        mine = talk(word)
        assert mine.text == _("Your sign-ups (reply a number to cancel one):")
        assert mine.lines == [f"1. {talk.dialogue.local(activity.starts_at)} 种树 ({_('signed up')})"]

    asked = talk("1")  # a number from the sign-ups: asked first
    assert "种树" in asked.full_text() and Signup.get_by_id(signup.id).state == Signup.SIGNED_UP
    assert talk("2").full_text() == _("Your sign-up is kept. Reply 0 for the menu.")
    assert Signup.get_by_id(signup.id).state == Signup.SIGNED_UP
    talk("我的报名")
    talk("1")
    cancelled = talk("1")
    assert cancelled.full_text() == _("Your sign-up for %(code)s %(title)s is cancelled.", code=activity.code,
                                      title="种树")
    assert Signup.get_by_id(signup.id).state == Signup.CANCELLED
    assert talk(f"CANCEL {activity.code}").full_text() == _("You are not signed up for this activity.")
    talk(f"JOIN {activity.code}")
    assert talk(f"取消：{activity.code}").full_text() == cancelled.full_text()  # the code, at once
    assert talk("CANCEL").full_text() == _("You have no sign-ups. Reply 1 for activities.")


def test_a_number_after_a_cancel_does_not_join_again(talk, world):
    place, coordinator = world
    activity = make.activity(coordinator, place.north, title="种树")
    talk("活动")
    talk("1")
    assert Signup.get(Signup.activity == activity.id).state == Signup.SIGNED_UP
    talk(f"取消{activity.code}")
    shown = talk("1")  # the menu's 1: the activities again, nothing joined
    assert shown.text == talk._("Upcoming activities (time, title, places left). Reply a number to sign up:")
    assert Signup.get(Signup.activity == activity.id).state == Signup.CANCELLED


def test_a_pending_question_is_remembered(talk, world):
    place, coordinator = world
    first = make.activity(coordinator, place.north, title="种树", starts_at=make.future(days=2))
    second = make.activity(coordinator, place.north, title="敬老院", starts_at=make.future(days=3))
    talk("报名")
    assert second.code in talk(second.code).full_text()  # 报名 → A2
    talk("报名")
    assert first.code in talk("1").full_text()  # 报名 → 1
    assert {s.activity_id for s in Signup.select()} == {first.id, second.id}
    talk("报名")
    assert talk("谢谢").full_text().endswith(talk("菜单").full_text())  # no activity: the menu, nothing joined
    talk("签到")
    assert talk("谢谢").full_text().endswith(talk("菜单").full_text())  # and no wrong check-in counted
    assert not CheckInFailure.select().exists()
    talk("取消")
    lines = talk("2").full_text()  # which one? → 2 cancels the second
    assert "敬老院" in lines and Signup.get(Signup.activity == second.id).state == Signup.CANCELLED


def test_a_resident_reaches_everything_with_digits_alone(talk, world):
    place, coordinator = world
    activity = make.activity(coordinator, place.north, title="种树")
    soap = create_goods(coordinator, place.north, "肥皂", "Soap", 100)
    receive_stock(coordinator, soap, 5)
    confirm_participation(coordinator, report_deed(coordinator, talk.resident, "volunteering", "值守"))
    _ = talk._
    assert "您有1分" in talk("0").full_text()
    assert "种树" in talk("1").full_text()  # 1 activities
    assert activity.code in talk("1").full_text()  # the first of them: signed up
    talk("0")
    assert "种树" in talk("2").full_text()  # 2 my sign-ups
    talk("0")
    assert "值守" in talk("3").full_text()  # 3 history
    talk("0")
    code = talk("4").full_text()  # 4 counter code
    assert any(ch.isdigit() for ch in code) and "兑换码" in code
    talk("0")
    assert "肥皂" in talk("5").full_text()  # 5 goods
    assert "还有5件" in talk("1").full_text()  # the first goods, in detail
    talk("0")
    assert talk("6").full_text() == _("Your name is %(name)s. Please reply with the right name:", name="王阿姨")
    assert "王桂兰" in talk("我叫王桂兰").full_text()
    assert talk("1").full_text() == _("Your name is now %(name)s.", name="王桂兰")
    assert talk.fresh().display_name == "王桂兰"


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
        lines, _pages = talk.all_lines(reply)  # 更多 pages back through the passbook
        assert len(lines) == 7
        assert [line.rsplit(" = ", 1)[1] for line in lines] == ["7", "6", "5", "4", "3", "2", "1"]  # balance after
        assert [f"deed {n}" in line for n, line in zip(range(6, -1, -1), lines, strict=True)] == [True] * 7
        assert all(" +1 " in line for line in lines)
        assert all("志愿服务 deed" in line for line in lines), lines  # the rule's name, not "volunteering v1"


def test_the_passbook_dates_an_award_by_its_activity_and_uses_english_titles(talk, world):
    place, coordinator = world
    activity = make.activity(coordinator, place.north, title="扫楼道")
    Activity.update(title_en="Stairwell sweep").where(Activity.id == activity.id).execute()
    talk(f"JOIN {activity.code}")
    activity = make.begin(activity)  # it took place yesterday; confirmed today
    confirm_participation(coordinator, Signup.get(Signup.resident == talk.resident.id))
    line = talk("明细").lines[0]
    assert line.startswith(talk.dialogue.local(activity.starts_at, "%m-%d")) and "扫楼道" in line
    talk("EN")
    assert "Volunteering Stairwell" in talk("HIST").lines[0]  # cut to fit, in English


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


def test_one_point_is_one_point_in_english(talk, world):
    _place, coordinator = world
    confirm_participation(coordinator, report_deed(coordinator, talk.resident, "volunteering", "值守"))
    talk("EN")
    assert talk("BAL").full_text() == "Your balance: 1 point."
    talk("中文")
    assert talk("BAL").full_text() == "您的积分余额：1 分。"


def test_switching_languages(talk):
    assert talk("LANG EN").full_text() == "Language changed to English. Reply 0 for the menu."
    assert talk.fresh().language == "en"
    assert talk("BAL").full_text() == "Your balance: 0 points."
    chinese = talk("中文")
    assert talk.fresh().language == "zh_Hans" and chinese.language == "zh_Hans"
    assert chinese.full_text() == talk._("Language changed to English. Reply 0 for the menu.")
    assert talk("BAL").full_text() == talk._("Your balance: %(points)s points.", points="0") != (
        "Your balance: 0 points.")
    talk("ENGLISH")
    assert talk.fresh().language == "en"
    menu = talk("LANG")  # no argument: the choice, nothing changes
    assert menu.full_text() == "Reply 中文 for Chinese or EN for English."
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
    assert contacts.opted_out(resident, SMS)
    told = talk("BAL")  # once a day, how to come back
    assert told.full_text() == talk._("You have unsubscribed from Linli SMS. Reply START to subscribe again.")
    for text in ("BAL", "HELP", "帮助", "LIST", "MORE", f"JOIN {activity.code}", "hello", "LANG EN", "中文", ""):
        reply = talk(text)
        assert reply.silent and reply.full_text() == ""
    tomorrow = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + datetime.timedelta(days=1)
    assert talk("余额", now=tomorrow).full_text() == told.full_text()
    assert not Signup.select().exists()  # nothing happened while silent
    assert talk.fresh().language == "zh_Hans"
    assert talk(start).full_text() == talk._("Subscribed again. Reply 0 for the menu.")
    assert not contacts.opted_out(resident, SMS)
    assert talk("BAL").full_text() == talk._("Your balance: %(points)s points.", points="0")


def test_stop_on_telegram_stops_telegram_notices_not_sms_and_telegram_still_answers(world, dialogue):
    place, coordinator = world
    resident = make.resident(place.north, phone_number=PHONE, telegram_id=TELEGRAM_ID)
    talk = Talk(dialogue, TELEGRAM, str(TELEGRAM_ID), resident)
    assert talk("STOP").full_text() == talk._("You will get no more notices here. Send START to get them again.")
    assert contacts.opted_out(resident, TELEGRAM) and not contacts.opted_out(resident, SMS)
    assert contacts.reach(resident, contacts.SERVICE, ready=[TELEGRAM, SMS]) == SMS
    assert talk("BAL").full_text() == talk._("Your balance: %(points)s points.", points="0")
    assert Talk(dialogue, SMS, PHONE, resident)("余额").full_text() == talk._("Your balance: %(points)s points.",
                                                                              points="0")
    talk("START")
    assert contacts.reach(resident, contacts.SERVICE, ready=[TELEGRAM, SMS]) == TELEGRAM


@pytest.mark.parametrize("quiet", ["退订通知", "不要通知了", "quiet"])
def test_unsubscribing_from_announcements_keeps_receipts_and_reminders(world, dialogue, quiet):
    place, coordinator = world
    resident = make.resident(place.north, phone_number=PHONE)
    talk = Talk(dialogue, SMS, PHONE, resident)
    said = talk(quiet).full_text()
    assert said == talk._("You will get no more announcements. Points, codes and reminders still come. "
                          "Reply NEWS to get them again.")
    assert segments(said) == 1
    assert contacts.reach(resident, contacts.ANNOUNCEMENTS, ready=[SMS]) is None
    assert contacts.reach(resident, contacts.SERVICE, ready=[SMS]) == SMS
    assert resident.id not in [r.id for r in contacts.audience(place.north)]
    assert talk("BAL").full_text() == talk._("Your balance: %(points)s points.", points="0")  # not silenced
    talk("订阅通知")
    assert contacts.reach(resident, contacts.ANNOUNCEMENTS, ready=[SMS]) == SMS


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
    assert numbers_of(lines) == list(range(1, 16))  # each exactly once, numbered across pages
    assert all(f"第{i}场" in line for i, line in enumerate(lines))  # soonest first, in order
    assert activities[11].code in talk("12").full_text()  # a number from a later page picks it
    nothing = talk._("Nothing more to show.")
    assert talk("MORE").full_text() == nothing
    assert talk("更多").full_text() == nothing

    talk("活动")  # a fresh listing starts again at the top ...
    talk("BAL")  # ... and any reply that fits forgets what was waiting
    assert talk("MORE").full_text() == nothing


def test_telegram_gets_the_whole_list_at_once(world, dialogue):
    place, coordinator = world
    resident = make.resident(place.north, telegram_id=TELEGRAM_ID)
    for i in range(15):
        make.activity(coordinator, place.north, starts_at=make.future(days=2, hours=i))
    talk = Talk(dialogue, TELEGRAM, str(TELEGRAM_ID), resident)
    reply = talk("LIST")
    assert numbers_of(reply.lines) == list(range(1, 16))
    assert len(reply.buttons) == 15
    assert talk("MORE").full_text() == talk._("Nothing more to show.")


# --- registration -------------------------------------------------------------------------


def test_a_new_sms_number_registers_with_a_name_and_the_community_number(world, dialogue):
    _ = messages(dialogue, "zh_Hans")
    ids = itertools.count(1)

    def text(body):
        return sms.receive(dialogue, f"SM{next(ids)}", "138 0013 8000", body)

    welcome = dialogue.welcome("zh_Hans")
    assert text("你好") == welcome
    ask_name = _("Please reply with your name, for example: 陈桂兰")
    for not_a_name in ("我要报名", "你好", "1", "😀😀", "帮助", "12345"):  # none of these becomes a name
        assert text(not_a_name) == ask_name, not_a_name
    assert text("我叫王阿姨") == _("Your name: %(name)s. Reply 1 if it is right, 2 to write it again.", name="王阿姨")
    assert text("2") == ask_name  # write it again
    text("王阿姨。")
    choices = text("1").splitlines()
    assert choices[0] == _("Which community do you live in? Reply with its number:")
    assert choices[1:] == ["1. 东社区", "2. 北社区", "3. 南社区"]
    assert text("9") == "\n".join(choices)  # not a choice: asked again
    assert text("社区") == "\n".join(choices)  # part of several names: asked again
    assert not Resident.select().exists()
    registered = text("北")  # a unique part of the name
    assert registered.startswith(_("Welcome, %(name)s! You are registered with %(community)s.", name="王阿姨",
                                   community="北社区"))
    assert _("No upcoming activities right now.") in registered  # 我要报名, asked before, is done now
    resident = Resident.get()
    assert (resident.phone, resident.display_name, resident.community.code, resident.language) == (
        PHONE, "王阿姨", "N1", "zh_Hans")
    conversation = Conversation.get(Conversation.address == PHONE)
    assert (conversation.channel, conversation.state) == (SMS, "")
    assert text("BAL") == _("Your balance: %(points)s points.", points="0")


@pytest.mark.parametrize("choice, code", [("２", "N1"), ("二", "N1"), ("南社区", "S1"), ("东", "E1"), ("s1", "S1")])
def test_the_community_by_number_name_or_part_of_it(world, dialogue, choice, code):
    for body in ("hi", "陈桂兰", "1"):
        dialogue.handle(SMS, PHONE, body)
    dialogue.handle(SMS, PHONE, choice)
    assert Resident.get(Resident.phone == PHONE).community.code == code


def test_a_command_sent_before_registering_is_carried_out_after(world, dialogue):
    place, coordinator = world
    activity = make.activity(coordinator, place.north, title="种树")
    for body in (f"报名 {activity.code}", "陈桂兰", "1"):
        dialogue.handle(SMS, PHONE, body)
    done = dialogue.handle(SMS, PHONE, "2").full_text()
    assert "陈桂兰" in done and activity.code in done and "种树" in done
    resident = Resident.get(Resident.phone == PHONE)
    assert Signup.get(Signup.resident == resident.id).activity_id == activity.id


def test_registration_in_english(world, dialogue):
    address = "+8613900139000"

    def handle(body):
        reply = dialogue.handle(SMS, address, body)
        assert segments(reply.full_text()) <= 2
        return reply.full_text()

    assert handle("hi").startswith("欢迎")
    assert handle("EN") == "Language changed to English. Please reply with your name to register."
    assert handle("x" * 31) == "Please reply with your name, for example: 陈桂兰"
    assert handle("My name is Bob  Smith") == "Your name: Bob Smith. Reply 1 if it is right, 2 to write it again."
    assert handle("yes").startswith("Which community do you live in?")
    assert handle("south").startswith("Welcome, Bob Smith! You are registered with South.")
    resident = Resident.get(Resident.phone == address)
    assert (resident.display_name, resident.community.code, resident.language) == ("Bob Smith", "S1", "en")


def test_a_telegram_user_registers_with_the_telegram_id(world, dialogue):
    _ = messages(dialogue, "zh_Hans")
    address = "777000111"
    assert dialogue.handle(TELEGRAM, address, "/start").full_text() == dialogue.welcome("zh_Hans")
    assert dialogue.welcome("zh_Hans").startswith(_("Welcome to Linli, the community points service! Please reply "
                                                    "with your name.")) and dialogue.welcome("zh_Hans")[0] == "欢"
    dialogue.handle(TELEGRAM, address, "李四")
    community = dialogue.handle(TELEGRAM, address, "1")
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
    dialogue.handle(SMS, PHONE, "张三")
    reply = dialogue.handle(SMS, PHONE, "确认")
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
    dialogue.handle(SMS, PHONE, "1")
    reply = dialogue.handle(SMS, PHONE, choice)
    assert isinstance(reply, Reply) and reply.full_text()


def test_the_community_question_fits_two_segments_with_many_communities(world, dialogue):
    place, _coordinator = world
    for i in range(12):
        create_community(f"C{i:02d}", f"幸福里第{i}社区居民委员会", f"Happy Lane {i}", parent=place.street)
    dialogue.handle(SMS, PHONE, "hi")
    dialogue.handle(SMS, PHONE, "王阿姨")
    reply = dialogue.handle(SMS, PHONE, "1")
    assert segments(reply.full_text()) <= 2, reply.full_text()


def test_the_english_join_reply_fits_two_segments_with_emoji_titles(world, dialogue):
    place, coordinator = world
    resident = make.resident(place.north, phone_number=PHONE, language="en")
    activity = make.activity(coordinator, place.north, title="🎉" * 30, place="🏠" * 30)
    reply = dialogue.handle(SMS, resident.phone, f"JOIN {activity.code}")
    assert Signup.get(Signup.resident == resident.id).state == Signup.SIGNED_UP
    assert segments(reply.full_text()) <= 2, reply.full_text()


# --- any text at all -------------------------------------------------------------------------

WORDS = sorted(w for i in INTENTS for w in (*i.latin, *i.chinese, *i.alone))
SPECIALS = ["\x00", "\u202eBAL", "JOIN \u200b", "报名", "JOIN " + "9" * 1500, "😀" * 800, "e\u0301" * 700,
            "MORE", "LANG", "LANG \x00EN", "\u202e\u200b\x00", "STOP", "START", "1", "n1", "ﷺ" * 200]
ANY_TEXT = st.one_of(
    st.text(max_size=1600),
    st.text(alphabet=st.characters(categories=["Cf", "Mn", "So", "Lo", "Zs", "Nd", "No", "Cc"]), max_size=400),
    st.builds(lambda word, gap, rest: word + gap + rest, st.sampled_from(WORDS),
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
    Resident.update(language=language).where(Resident.id.in_(ids)).execute()
    Contact.update(opted_out=False).execute()
    Conversation.update(opted_out=False, state="", data="{}").execute()


def newcomer(dialogue, channel, language, state):
    """A fresh unregistered address, brought to `state` of the registration."""
    n = next(_addresses)
    address = f"+86139{n:08d}" if channel == SMS else str(10**9 + n)
    if language == "en":
        Conversation.create(channel=channel, address=address, language="en")
    if state in ("awaiting_name", "confirm_name", "awaiting_community"):
        dialogue.handle(channel, address, "hi")
    if state in ("confirm_name", "awaiting_community"):
        dialogue.handle(channel, address, "Someone")
    if state == "awaiting_community":
        dialogue.handle(channel, address, "1")
    conversation = Conversation.get_or_none((Conversation.channel == channel) & (Conversation.address == address))
    assert (conversation.state if conversation else "") == state
    return address


@FUZZ
@given(text=ANY_TEXT, language=st.sampled_from(["zh_Hans", "en"]),
       state=st.sampled_from(["", "awaiting_name", "confirm_name", "awaiting_community"]))
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
