"""The Telegram bot end to end: the real python-telegram-bot stack, polling a fake Bot API server.

Each test builds the application exactly as `python -m botapp` does (`build_application`), points
it at tests/fake_telegram.py, starts polling, queues what residents send and awaits what the bot
sends back. The bot's handlers run the dialogue in worker threads, each with its own database
connection; the test's own connection (the `db` fixture) sets up and inspects the same database.

Updates are handled one at a time, in order (`concurrent_updates(False)`), so once a reply to a
later update has arrived, every earlier update has been handled: `settle` relies on that to
check that something did *not* happen.
"""

import asyncio
import contextlib
import json
import logging
import re
import socket
import threading
import time
from pathlib import Path

import community_factory as f
import httpx
import pytest
from fake_telegram import FakeTelegram
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, EndPointNotFound

import ledger
from botapp import telegram_bot
from botapp.dialogue import Dialogue
from botapp.models import Conversation, Inbound
from botapp.telegram_bot import EDITED, NO_PHOTO, ONLY_TEXT, PRIVATELY, SORRY, build_application, set_commands
from botapp.worker import TelegramSender, Worker
from community import Case, Staff, awards, cases, people, places
from community.models import Activity, Resident, Signup

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:TEST-linli-token"
USER, OTHER, PROBE = 70001, 70002, 79999
PHONE = "+8613800138000"
TIMEOUT = 8  # seconds to wait for one step's replies


@pytest.fixture
def telegram():
    with FakeTelegram(TOKEN) as server:
        yield server


def make_dialogue(cls=Dialogue):
    return cls(str(ROOT / "translations"), region="CN", code_secret="tg-test", bot_username="linli_bot")


@contextlib.asynccontextmanager
async def running(telegram, dialogue=None):
    """The bot as production runs it, polling the fake server; stopped cleanly on the way out."""
    application = telegram.application = build_application(TOKEN, dialogue or make_dialogue(),
                                                           base_url=telegram.base_url)
    await application.initialize()
    try:
        await application.start()
        await application.updater.start_polling(poll_interval=0.0, timeout=1)
        yield application
    finally:
        if application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()


def run(script):
    """Run an async test body in a fresh event loop (pytest-asyncio is not used here)."""
    asyncio.run(asyncio.wait_for(script(), timeout=60))


class Chat:
    """One Telegram user's private chat with the bot: send something, await the bot's replies."""

    def __init__(self, telegram, user_id, name="Test"):
        self.telegram, self.user_id, self.name = telegram, user_id, name

    async def _replies(self, before, count):
        messages = await asyncio.to_thread(
            self.telegram.wait_for_messages, before + count, chat_id=self.user_id, timeout=TIMEOUT
        )
        return messages[before:]

    def _seen(self):
        return len(self.telegram.messages(self.user_id))

    async def send(self, text, replies=1):
        before = self._seen()
        update = self.telegram.send_text(self.user_id, text, first_name=self.name)
        return update, await self._replies(before, replies)

    async def press(self, data, replies=1):
        before = self._seen()
        update = self.telegram.press_button(self.user_id, data, first_name=self.name)
        return update, await self._replies(before, replies)

    async def share(self, phone, contact_user_id, replies=1):
        before = self._seen()
        update = self.telegram.share_contact(
            self.user_id, phone, contact_user_id=contact_user_id, first_name=self.name
        )
        return update, await self._replies(before, replies)

    async def text(self, message):
        """Send `message` and return the text of the one reply."""
        _, (reply,) = await self.send(message)
        return reply["text"]


async def settle(telegram):
    """Wait until every update queued so far has been handled: a later one has been answered (so
    all before it were fetched), and the bot is handling none (different people's at once)."""
    await Chat(telegram, PROBE, "Probe").send("ping")
    processor = telegram.application.update_processor
    for _ in range(int(TIMEOUT / 0.01)):
        if not processor.current_concurrent_updates:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the bot is still handling updates")


def buttons(message):
    """A sent message's inline buttons as (label, callback data) pairs."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [(b["text"], b.get("callback_data")) for row in rows for b in row]


def numbers(text):
    return re.findall(r"\d+(?:\.\d+)?", text)


def assert_no_leak(text):
    assert "Traceback" not in text and "Error" not in text and "%(" not in text, text


# --- a resident's journey -------------------------------------------------------------------


def test_a_new_resident_registers_joins_is_confirmed_and_sees_the_points(db, telegram):
    place = f.build_place()
    coordinator = f.coordinator(place.north)
    activity = f.activity(coordinator, place.north, title="Park clean-up", place="Gate 3")
    assert activity.code == "A1"
    chat = Chat(telegram, USER, "Wang")

    async def script():
        async with running(telegram):
            # /start: one message asks whether they use Linli by SMS already, with the button to share
            # the phone number on it, and for the name otherwise.
            _, (welcome,) = await chat.send("/start")
            assert "短信" in welcome["text"] and "姓名" in welcome["text"] and not buttons(welcome)
            assert_no_leak(welcome["text"])
            markup = telegram.calls_to("sendMessage")[-1].params["reply_markup"]
            markup = json.loads(markup) if isinstance(markup, str) else markup
            assert markup["keyboard"][0][0]["request_contact"] is True
            conversation = Conversation.get(channel="telegram", address=str(USER))
            assert conversation.state == "awaiting_name"

            # The name, read back with two buttons; three communities, so the bot asks which one.
            _, (read_back,) = await chat.send("王芳")
            assert "王芳" in read_back["text"] and [data for _, data in buttons(read_back)] == ["1", "2"]
            _, (question,) = await chat.press("1")
            offered = dict(buttons(question))
            assert set(offered) == {"东社区", "北社区", "南社区"}
            assert Resident.get_or_none(Resident.telegram_id == USER) is None

            _, (registered,) = await chat.press(offered["北社区"])
            assert "王芳" in registered["text"] and "北社区" in registered["text"]
            answered = telegram.calls_to("answerCallbackQuery")
            assert len(answered) == 2 and all(a.params["callback_query_id"] for a in answered)
            resident = Resident.get(Resident.telegram_id == USER)
            assert (resident.display_name, resident.community_id) == ("王芳", place.north.id)
            assert resident.language == "zh_Hans" and resident.phone is None

            # /activities lists the activity with a Join button carrying the SMS words.
            _, (listing,) = await chat.send("/activities")
            assert listing["text"].splitlines()[1].startswith("1. ") and "Park clean-up" in listing["text"]
            assert [data for _, data in buttons(listing)] == ["JOIN A1"]

            _, (joined,) = await chat.press("JOIN A1")
            assert "A1" in joined["text"] and "Park clean-up" in joined["text"]
            assert [data for _, data in buttons(joined)] == ["CANCEL A1"]
            signup = Signup.get((Signup.resident == resident.id) & (Signup.activity == activity.id))
            assert signup.state == Signup.SIGNED_UP

            assert numbers(await chat.text("/balance")) == ["0"]
            mine = await chat.text("/mine")
            assert "Park clean-up" in mine

            # The day comes; a coordinator confirms. The rule for volunteering is worth 1 point.
            f.begin(activity)
            assert awards.confirm_participation(coordinator, signup).state == Signup.CONFIRMED

            assert numbers(await chat.text("/balance")) == ["1"]
            history = await chat.text("/history")
            posting = history.splitlines()[-1]
            assert "+1 " in posting and "志愿服务 Park clean-up" in posting and posting.endswith("= 1")

            # Every step was answered exactly once.
            await settle(telegram)
            assert len(telegram.messages(USER)) == 10
            for text in telegram.texts(USER):
                assert_no_leak(text)

    run(script)


def test_a_single_community_needs_no_choice(db, telegram):
    people.create_community("C1", "和平社区", "Peace")
    chat = Chat(telegram, USER)

    async def script():
        async with running(telegram):
            await chat.send("/start")
            assert "Li Ming" in await chat.text("Li Ming")
            registered = await chat.text("1")
            assert "Li Ming" in registered and "和平社区" in registered

    run(script)
    assert Resident.get(Resident.telegram_id == USER).display_name == "Li Ming"


# --- several people at once -------------------------------------------------------------------


def test_one_persons_messages_are_answered_in_order_and_others_do_not_wait(db, telegram):
    place = f.build_place()
    people.register_resident(place.north, "Zhao Min", telegram_id=USER)
    people.register_resident(place.north, "Qian Li", telegram_id=OTHER)

    async def script():
        async with running(telegram):
            telegram.slow_next("sendMessage", 0.5, chat_id=USER)  # Telegram slow to take USER's first
            telegram.send_text(USER, "我的积分")
            telegram.send_text(USER, "明细")
            telegram.send_text(OTHER, "我的积分")
            await asyncio.to_thread(telegram.wait_for_messages, 3, timeout=TIMEOUT)
            await settle(telegram)

    run(script)
    order = [(m["chat_id"], m["text"]) for m in telegram.messages() if m["chat_id"] != PROBE]
    assert [chat for chat, _ in order] == [OTHER, USER, USER]  # not kept waiting behind the slow one
    (_, balance), (_, history) = order[1:]
    assert "余额" in balance and "余额" not in history  # USER's two answers in the order asked


# --- redelivery -------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["button", "text"])
def test_a_redelivered_update_has_exactly_one_effect(db, telegram, how):
    place = f.build_place()
    activity = f.activity(f.coordinator(place.north), place.north)
    resident = people.register_resident(place.north, "Zhao Min", telegram_id=USER)
    chat = Chat(telegram, USER)

    async def script():
        async with running(telegram):
            if how == "button":
                await chat.send("/activities")
                update, (reply,) = await chat.press("JOIN A1")
            else:
                update, (reply,) = await chat.send("JOIN A1")
            assert "A1" in reply["text"]
            seen = len(telegram.messages(USER))

            telegram.redeliver(update)
            await settle(telegram)
            assert len(telegram.messages(USER)) == seen  # no second reply
            assert len(telegram.calls_to("answerCallbackQuery")) == (1 if how == "button" else 0)

        # A bot restarted before it confirmed the offset gets the update again: still no effect.
        async with running(telegram):
            telegram.redeliver(update)
            await settle(telegram)
            assert len(telegram.messages(USER)) == seen
            assert len(telegram.calls_to("answerCallbackQuery")) == (1 if how == "button" else 0)
        assert Inbound.select().where(Inbound.key.endswith(f":{update['update_id']}")).count() == 1

    run(script)
    assert Signup.select().where(Signup.resident == resident.id).count() == 1
    assert Activity.get_by_id(activity.id).taken == 1


# --- linking an SMS resident by the shared contact ------------------------------------------


@pytest.mark.parametrize("shared", [PHONE, "8613800138000", "+86 138 0013 8000"])
def test_sharing_ones_own_contact_links_the_sms_resident(db, telegram, shared):
    place = f.build_place()
    resident = people.register_resident(place.north, "Sun Li", phone=PHONE)
    chat = Chat(telegram, USER)

    async def script():
        async with running(telegram):
            _, (reply,) = await chat.share(shared, contact_user_id=USER)
            assert "Sun Li" in reply["text"]
            assert Resident.get_by_id(resident.id).telegram_id == USER
            # From now on the dialogue knows them on Telegram.
            assert numbers(await chat.text("/balance")) == ["0"]
            # Sharing it again says it is already linked.
            _, (again,) = await chat.share(shared, contact_user_id=USER)
            assert "Sun Li" in again["text"]

    run(script)
    assert Resident.get_by_id(resident.id).telegram_id == USER


@pytest.mark.parametrize("owner", [OTHER, None], ids=["someone-else", "no-telegram-user"])
def test_a_contact_that_is_not_the_senders_own_is_refused(db, telegram, owner):
    place = f.build_place()
    resident = people.register_resident(place.north, "Sun Li", phone=PHONE)
    chat = Chat(telegram, USER)

    async def script():
        async with running(telegram):
            _, (reply,) = await chat.share(PHONE, contact_user_id=owner)
            assert reply["text"] and "Sun Li" not in reply["text"]
            assert_no_leak(reply["text"])

    run(script)
    assert Resident.get_by_id(resident.id).telegram_id is None
    assert Resident.get_or_none(Resident.telegram_id == USER) is None


def test_a_contact_with_an_unknown_number_starts_registration(db, telegram):
    place = f.build_place()
    chat = Chat(telegram, USER)

    async def script():
        async with running(telegram):
            _, (reply,) = await chat.share(PHONE, contact_user_id=USER)
            assert reply["text"]
            assert Conversation.get(channel="telegram", address=str(USER)).state == "awaiting_name"
            await chat.send("Qian Yu")
            _, (question,) = await chat.press("1")
            await chat.press(dict(buttons(question))[place.south.name_zh])

    run(script)
    resident = Resident.get(Resident.telegram_id == USER)
    assert (resident.display_name, resident.community_id) == ("Qian Yu", place.south.id)
    assert resident.phone == "+8613800138000"  # the number they shared as their own comes along


# --- never silence, never a traceback ---------------------------------------------------------


def test_unknown_free_text_gets_the_help(db, telegram):
    place = f.build_place()
    people.register_resident(place.north, "Zhou Jie", telegram_id=USER)
    chat = Chat(telegram, USER)

    async def script():
        async with running(telegram):
            for text in ("what is this?", "JOIN", "🙂", "x" * 4096):
                reply = await chat.text(text)
                assert reply, text
                assert_no_leak(reply)
            help_text = await chat.text("/help")
            assert "/activities" in help_text and "/balance" in help_text  # Telegram's commands, not SMS words

    run(script)


def test_an_unregistered_sender_is_asked_for_a_name_whatever_they_write(db, telegram):
    f.build_place()
    chat = Chat(telegram, USER)

    async def script():
        async with running(telegram):
            for text in ("hello", "/balance", "/join A1"):
                reply = await chat.text(text)
                assert reply
                assert_no_leak(reply)
            assert Conversation.get(channel="telegram", address=str(USER)).state == "awaiting_name"

    run(script)
    assert Resident.select().count() == 0


class Exploding(Dialogue):
    """A dialogue with a bug: the word "boom" raises."""

    def handle(self, channel, address, text, **kwargs):
        if "boom" in text:
            raise RuntimeError("boom: an internal detail")
        return super().handle(channel, address, text, **kwargs)


def test_an_error_in_a_handler_is_logged_and_the_resident_gets_an_apology(db, telegram, caplog):
    f.build_place()
    chat = Chat(telegram, USER)

    async def script():
        async with running(telegram, make_dialogue(Exploding)):
            assert await chat.text("boom") == SORRY
            _, (sorry,) = await chat.send("/join boom")
            assert sorry["text"] == SORRY
            # The bot carries on with the next update.
            reply = await chat.text("hello")
            assert reply != SORRY and reply

    with caplog.at_level(logging.ERROR, logger=telegram_bot.__name__):
        run(script)
    errors = [r for r in caplog.records if r.name == telegram_bot.__name__ and r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert all(isinstance(r.exc_info[1], RuntimeError) for r in errors)


# --- more of what residents do on Telegram ----------------------------------------------------


def test_a_check_in_deep_link_and_the_cancel_button(db, telegram):
    place = f.build_place()
    coordinator = f.coordinator(place.north)
    today = f.activity(coordinator, place.north, title="Soup kitchen", starts_at=f.future(days=0, hours=1))
    later = f.activity(coordinator, place.north, title="Library")
    resident = people.register_resident(place.north, "Zhou Jie", telegram_id=USER)
    chat = Chat(telegram, USER)

    async def script():
        async with running(telegram):
            await chat.send(f"/join {today.code}")
            await chat.send(f"/join {later.code}")
            # The QR code at the door opens t.me/<bot>?start=here-<code>: one reply, no phone keyboard.
            _, (checked_in,) = await chat.send(f"/start here-{today.checkin_code}")
            assert "Soup kitchen" in checked_in["text"]
            # /mine offers a Cancel button only where cancelling is still possible.
            _, (mine,) = await chat.send("/mine")
            assert [data for _, data in buttons(mine)] == [f"CANCEL {later.code}"]
            _, (cancelled,) = await chat.press(f"CANCEL {later.code}")
            assert later.code in cancelled["text"]
            await settle(telegram)
            assert len(telegram.messages(USER)) == 5

    run(script)
    states = {s.activity_id: s.state for s in Signup.select().where(Signup.resident == resident.id)}
    assert states == {today.id: Signup.CHECKED_IN, later.id: Signup.CANCELLED}
    assert Activity.get_by_id(later.id).taken == 0


# --- known bugs (strict: each fails once the bug is fixed, so the marker must then go) ---------


def registered_chat(telegram):
    place = f.build_place()
    f.activity(f.coordinator(place.north), place.north)
    resident = people.register_resident(place.north, "Zhou Jie", telegram_id=USER)
    return resident, Chat(telegram, USER)


def test_an_unknown_command_gets_an_answer(db, telegram):
    _, chat = registered_chat(telegram)

    async def script():
        async with running(telegram):
            telegram.send_text(USER, "/points")
            await settle(telegram)
            assert telegram.texts(USER), "silence"

    run(script)


def test_the_language_command_alone_is_understood(db, telegram):
    _, chat = registered_chat(telegram)

    async def script():
        async with running(telegram):
            not_understood = await chat.text("what is this?")
            assert await chat.text("/language") != not_understood

    run(script)


def test_editing_a_message_is_not_an_error(db, telegram, caplog):
    _, chat = registered_chat(telegram)

    async def script():
        async with running(telegram):
            telegram.send_text(USER, "/balance", edited=True)
            telegram.send_text(USER, "balance please", edited=True)
            await settle(telegram)
            assert SORRY not in telegram.texts(USER)

    with caplog.at_level(logging.ERROR, logger=telegram_bot.__name__):
        run(script)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_button_press_answered_too_late_still_counts(db, telegram):
    resident, chat = registered_chat(telegram)

    async def script():
        async with running(telegram):
            await chat.send("/activities")
            telegram.fail_next("answerCallbackQuery", "Bad Request: query is too old and response "
                               "timeout expired or query ID is invalid")
            telegram.press_button(USER, "JOIN A1")
            await settle(telegram)
            assert Signup.select().where(Signup.resident == resident.id).count() == 1
            assert SORRY not in telegram.texts(USER)

    run(script)


# --- the fake server itself -------------------------------------------------------------------


def raw(telegram, method, body=None, *, token=TOKEN, query=""):
    """Call the fake directly: (HTTP status, decoded answer); a dict body is sent as JSON."""
    url = f"http://127.0.0.1:{telegram.port}/bot{token}/{method}{query}"
    answer = httpx.post(url, json=body, timeout=40) if body is not None else httpx.get(url, timeout=40)
    return answer.status_code, answer.json()


def test_the_fake_answers_ptb_like_telegram(telegram):
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Join", callback_data="JOIN A1")]])

    async def script():
        async with Bot(TOKEN, base_url=telegram.base_url) as bot:
            assert (await bot.get_me()).username == "linli_test_bot"
            sent = await bot.send_message(USER, "123", reply_markup=markup)
            assert (sent.chat.id, sent.text) == (USER, "123")
            assert sent.reply_markup.inline_keyboard[0][0].callback_data == "JOIN A1"
            photo = await bot.send_photo(USER, photo=b"\x89PNG fake", caption="card 1")
            assert photo.photo and photo.caption == "card 1"
            edited = await bot.edit_message_text("456", chat_id=USER, message_id=sent.message_id)
            assert (edited.message_id, edited.text) == (sent.message_id, "456")
            assert await bot.answer_callback_query("17", text="ok")
            assert await bot.set_webhook("https://example.org/telegram", secret_token="s3cret")
            assert (await bot.get_webhook_info()).url == "https://example.org/telegram"
            assert await bot.delete_webhook()
            assert await bot.set_my_commands([("balance", "Points"), ("history", "History")])
            assert [c.command for c in await bot.get_my_commands()] == ["balance", "history"]
            with pytest.raises(BadRequest, match="too long"):
                await bot.send_message(USER, "x" * 4097)
            with pytest.raises(BadRequest, match="(?i)button_data_invalid"):
                await bot.send_message(USER, "x", reply_markup=InlineKeyboardMarkup(
                    [[InlineKeyboardButton("long", callback_data="报名" * 11)]]))
            with pytest.raises(EndPointNotFound):
                await bot.do_api_request("getNothingAtAll")
            assert await bot.log_out()
            assert await bot.close()

    run(script)
    # What PTB 22 actually sends: form fields holding JSON values; a multipart body for a file.
    message = telegram.calls_to("sendMessage")[0]
    assert message.content_type == "application/x-www-form-urlencoded"
    assert message.params == {"chat_id": USER, "text": "123", "reply_markup": markup.to_dict()}
    upload = telegram.calls_to("sendPhoto")[0]
    assert upload.content_type == "multipart/form-data"
    assert upload.params["chat_id"] == USER and upload.params["caption"] == "card 1"
    assert list(upload.files.values())[0][1] == b"\x89PNG fake"
    assert [c.method for c in telegram.calls][-2:] == ["logOut", "close"]


def test_the_fake_takes_json_and_query_strings_and_refuses_what_telegram_refuses(telegram):
    assert raw(telegram, "sendMessage", {"chat_id": USER, "text": "true"})[1]["result"]["text"] == "true"
    assert raw(telegram, "getMe", query="?x=1")[1]["result"]["is_bot"] is True
    assert raw(telegram, "sendMessage", {"chat_id": USER, "text": " "}) == (
        400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"})
    assert raw(telegram, "noSuchMethod", {}) == (
        404, {"ok": False, "error_code": 404, "description": "Not Found"})
    assert raw(telegram, "getMe", token="1:wrong")[0] == 401
    assert [c.method for c in telegram.calls] == ["sendMessage", "getMe", "sendMessage", "noSuchMethod"]
    assert telegram.texts(USER) == ["true"]  # the refused message was not delivered


def test_the_fake_long_polls_with_telegrams_offsets(telegram):
    started = time.monotonic()
    assert raw(telegram, "getUpdates", {"timeout": 0})[1]["result"] == []
    assert time.monotonic() - started < 1

    threading.Timer(0.3, telegram.send_text, (USER, "/balance")).start()
    started = time.monotonic()
    (update,) = raw(telegram, "getUpdates", {"timeout": 10})[1]["result"]
    assert 0.2 < time.monotonic() - started < 5  # returned as soon as the update was queued
    assert update["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 8}]
    first = update["update_id"]
    # Not confirmed yet: the same offset gets it again; a higher offset confirms it.
    assert raw(telegram, "getUpdates", {"offset": first})[1]["result"] == [update]
    assert raw(telegram, "getUpdates", {"offset": first + 1})[1]["result"] == []
    # A redelivery comes once more, with the same id, even though it was confirmed.
    telegram.redeliver(update)
    assert raw(telegram, "getUpdates", {"offset": first + 1})[1]["result"] == [update]
    assert raw(telegram, "getUpdates", {"offset": first + 1})[1]["result"] == []
    assert telegram.press_button(USER, "X", message={"message_id": 1})["update_id"] == first + 1


def test_the_fake_lets_a_long_poll_go_when_it_stops():
    fake = FakeTelegram(TOKEN).start()
    answers = []
    poll = threading.Thread(target=lambda: answers.append(raw(fake, "getUpdates", {"timeout": 30})))
    poll.start()
    time.sleep(0.2)
    started = time.monotonic()
    fake.stop()
    poll.join(timeout=5)
    assert time.monotonic() - started < 5 and not poll.is_alive()
    assert answers == [(200, {"ok": True, "result": []})]


def test_an_sms_resident_links_telegram_with_a_one_time_deep_link(db, telegram):
    place = f.build_place()
    resident = people.register_resident(place.north, "Wang Fang", phone="+8613800138000", language="en")
    dialogue = make_dialogue()
    by_sms = dialogue.handle("sms", resident.phone, "绑定").full_text()
    code = re.search(r"start=link-([0-9A-Z]{10})", by_sms).group(1)
    assert "https://t.me/linli_bot?start=link-" in by_sms

    async def script():
        async with running(telegram, dialogue):
            chat = Chat(telegram, USER)
            linked = await chat.text(f"/start link-{code}")
            assert "Wang Fang" in linked
            assert Resident.get_by_id(resident.id).telegram_id == USER
            again = await Chat(telegram, USER + 1, "Intruder").text(f"/start link-{code}")
            assert "Wang Fang" not in again  # single use: the second opener gets nothing
            assert Resident.get_by_id(resident.id).telegram_id == USER
            assert "0" in await chat.text("/balance")

    run(script)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_webhook_mode_checks_telegrams_secret_token(db, telegram):
    """PTB's own webhook server: an update without the secret token is refused, with it handled."""
    resident, chat = registered_chat(telegram)
    port = free_port()
    update = {"update_id": 9001, "message": {
        "message_id": 1, "date": int(time.time()), "chat": {"id": USER, "type": "private"},
        "from": {"id": USER, "is_bot": False, "first_name": "Zhou"}, "text": "BAL"}}

    async def script():
        application = build_application(TOKEN, make_dialogue(), base_url=telegram.base_url)
        await application.initialize()
        await application.start()
        await application.updater.start_webhook(
            listen="127.0.0.1", port=port, url_path="telegram", webhook_url="https://linli.example/telegram",
            secret_token="s3cret-token",
        )
        try:
            url = f"http://127.0.0.1:{port}/telegram"
            async with httpx.AsyncClient() as client:
                forged = await client.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
                missing = await client.post(url, json=update)
                good = await client.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"})
            assert forged.status_code == 403 and missing.status_code == 403 and good.status_code == 200
            messages = await asyncio.to_thread(telegram.wait_for_messages, 1, chat_id=USER, timeout=TIMEOUT)
            assert "0" in messages[-1]["text"]
            assert telegram.webhook_url == "https://linli.example/telegram"
        finally:
            await application.updater.stop()
            await application.stop()
            await application.shutdown()

    run(script)


# --- what is not a text message --------------------------------------------------------------


def test_photos_edits_groups_and_the_app_language_each_get_their_answer(db, telegram):
    f.build_place()
    english = 5550001

    async def script():
        async with running(telegram) as application:
            # A new user whose app is in English is welcomed in English.
            message = telegram._user_message(english, "Sam", text="hello")
            message["from"]["language_code"] = "en-GB"
            telegram.queue({"message": message})
            (welcome,) = await asyncio.to_thread(telegram.wait_for_messages, 1, chat_id=english, timeout=TIMEOUT)
            assert welcome["text"].startswith("Welcome to Linli")
            chat = Chat(telegram, USER)
            # A photo Telegram cannot hand over (expired, deleted) is asked for again.
            for content, expected in (
                    ({"photo": [{"file_id": "gone", "file_unique_id": "u", "width": 9, "height": 9}]}, NO_PHOTO),
                    ({"sticker": {"file_id": "s1", "file_unique_id": "u", "width": 9, "height": 9,
                                  "is_animated": False, "is_video": False, "type": "regular"}}, ONLY_TEXT),
                    ({"voice": {"file_id": "v1", "file_unique_id": "u", "duration": 2}}, ONLY_TEXT),
                    ({"location": {"latitude": 25.4, "longitude": 119.0}}, ONLY_TEXT)):
                before = chat._seen()
                telegram.queue({"message": telegram._user_message(USER, "Test", **content)})
                (reply,) = await chat._replies(before, 1)
                assert reply["text"] == expected, content
            before = chat._seen()
            telegram.send_text(USER, "余额", edited=True)
            (reply,) = await chat._replies(before, 1)
            assert reply["text"] == EDITED
            group = -100123
            message = telegram._user_message(USER, "Test", text="/balance",
                                             entities=[{"type": "bot_command", "offset": 0, "length": 8}])
            message["chat"] = {"id": group, "type": "supergroup", "title": "楼栋群"}
            telegram.queue({"message": message})
            (reply,) = await asyncio.to_thread(telegram.wait_for_messages, 1, chat_id=group, timeout=TIMEOUT)
            assert reply["text"] == PRIVATELY
            await set_commands(application.bot)

    run(script)
    calls = telegram.calls_to("setMyCommands")
    assert [c.params.get("language_code") for c in calls] == [None, "zh"]
    assert "活动" in str(calls[1].params["commands"]) and "Activities" in str(calls[0].params["commands"])
    assert not Resident.select().where(Resident.telegram_id == USER).exists()  # none of it registered anyone


# --- a report with a photo ----------------------------------------------------------------------


def test_a_report_with_photos_from_sent_to_verified(db, telegram):
    place = f.build_place()
    worker = f.staff(Staff.GRID_WORKER, places.add_place("N1-G1", "一网格", "grid", "N1"), username="wang-grid")
    resident = f.resident(place.north, "陈桂兰", grid_label="一网格", unit_label="3号楼")
    Resident.update(telegram_id=USER).where(Resident.id == resident.id).execute()
    chat = Chat(telegram, USER)

    async def photo(data, caption=None, replies=1, as_file=False):
        before = chat._seen()
        telegram.send_photo(USER, data, caption=caption, as_file=as_file)
        return await chat._replies(before, replies)

    async def script():
        async with running(telegram) as application:
            (asked,) = await photo(f.photo_bytes((1600, 1200)), caption="反映 楼道灯坏了，晚上很黑")
            assert "是哪类问题" in asked["text"] and "3设施维修" in asked["text"]
            telegram.send_photo(USER, f.photo_bytes(colour=(0, 0, 255)))  # the album's second photo: no reply
            await settle(telegram)
            recorded = await chat.text("3")
            number = int(re.search(r"编号(\d+)", recorded).group(1))
            case = Case.get_by_id(number)
            assert (case.text, case.category, case.assignee_id) == ("楼道灯坏了,晚上很黑", "facilities", worker.id)
            assert len(case.photos) == 2 and all(bytes(p.data)[:3] == b"\xff\xd8\xff" for p in case.photos)
            assert telegram.calls_to("file") and len(telegram.messages(USER)) == 2

            # The grid worker deals with it; the outbox worker asks the reporter on Telegram.
            cases.handled(worker, cases.accept(worker, case), "换了灯泡")
            outbox_worker = Worker(make_dialogue(), telegram=TelegramSender(application.bot))
            before = chat._seen()
            while await outbox_worker.drain_once():
                pass
            asked = [m["text"] for m in await chat._replies(before, 2)]
            assert "已受理" in asked[0] and "解决了吗？回复1已解决，2未解决" in asked[1]
            thanked = await chat.text("1")
            assert "已办结" in thanked and "积分+0.2" in thanked

            # A picture sent as a file, with no words: the bot asks what is wrong.
            (question,) = await photo(f.photo_bytes(kind="PNG"), as_file=True)
            assert "收到照片" in question["text"] and "什么问题" in question["text"]
            assert "是哪类问题" in await chat.text("3号楼门口积水")
            (broken,) = await photo(b"not a picture at all")
            assert "看不清这张图片" in broken["text"]

    run(script)
    assert Case.get_by_id(Case.select().get().id).state == Case.CLOSED
    assert ledger.verify().ok
