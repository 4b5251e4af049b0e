"""SMS through the office's Android phone: the app's signed webhooks in, the real
`android-sms-gateway` client out to a fake phone on loopback, replies through the outbox."""

import asyncio
import datetime
import re
import time

import community_factory as make
import pytest
from commits import light
from fake_phone import FakePhone
from logcheck import leaks, log_lines

from botapp import outbox
from botapp.settings import Settings
from botapp.worker import AndroidSender, Worker, build_sms_sender
from community import Notice, Resident, Signup
from ledger import is_postgresql
from web import create_app

PHONE = "+8613800138000"


@pytest.fixture
def phone():
    with FakePhone() as fake:
        yield fake


@pytest.fixture
def app(db_url, phone):
    return create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "t", "SMS_PROVIDER": "android",
                       "ANDROID_SMS_URL": phone.url, "ANDROID_SMS_USERNAME": phone.username,
                       "ANDROID_SMS_PASSWORD": phone.password, "ANDROID_SMS_SIGNING_KEY": phone.signing_key,
                       "PUBLIC_BASE_URL": "https://linli.example"})


@pytest.fixture
def place(app):
    with app.app_context():
        return make.build_place()


def post(client, body, headers):
    return client.post("/sms/android", data=body, headers=headers)


def worker(app, phone, daily_limit=0):
    sender = AndroidSender(phone.url, phone.username, phone.password, rate=0, daily_limit=daily_limit)
    return Worker(app.extensions["linli.dialogue"], sms=sender)


def drain(app, w):
    with app.app_context():
        while asyncio.run(w.drain_once()):
            pass


def say(client, app, phone, text, w=None):
    """Text the office phone as the resident; return the SMS that reach the resident's phone."""
    before = len(phone.texts_to(PHONE))
    assert post(client, *phone.received(PHONE, text)).status_code == 204
    drain(app, w or worker(app, phone))
    return phone.texts_to(PHONE)[before:]


def test_forged_unsigned_stale_and_keyless_webhooks_are_refused(app, client, phone, place):
    body, headers = phone.received(PHONE, "余额")
    assert post(client, body, {}).status_code == 403
    assert post(client, body, {**headers, "X-Signature": "0" * 64}).status_code == 403
    assert post(client, body + b" ", headers).status_code == 403  # the body is what is signed
    assert post(client, body, phone.sign(body, key="another key")).status_code == 403
    assert post(client, body, phone.sign(body, timestamp=int(time.time()) - 6 * 60)).status_code == 403
    assert post(client, body, phone.sign(body, timestamp=int(time.time()) + 6 * 60)).status_code == 403
    assert post(client, body, {**headers, "X-Timestamp": "soon"}).status_code == 403
    app.config["ANDROID_SMS_SIGNING_KEY"] = ""
    assert post(client, body, headers).status_code == 403  # no key: nothing is accepted
    with app.app_context():
        assert Notice.select().count() == 0
    app.config["ANDROID_SMS_SIGNING_KEY"] = phone.signing_key
    bad = b'{"event": "sms:received", "id": "x", "payload": {"phoneNumber": 1}}'
    assert post(client, bad, phone.sign(bad)).status_code == 400
    assert post(client, b"not json", phone.sign(b"not json")).status_code == 400


def test_a_redelivered_event_has_one_effect_and_one_reply(app, client, phone, place):
    with app.app_context():
        make.resident(place.north, phone_number=PHONE)
        activity = make.activity(make.coordinator(place.north), place.north)
    body, headers = phone.received(PHONE, "报名 1", event_id="ev-same", message_id="same-content")
    for _ in range(3):  # the app retries until it hears 2xx, sometimes after we answered
        assert post(client, body, phone.sign(body)).status_code == 204
    drain(app, worker(app, phone))
    texts = phone.texts_to(PHONE)
    assert len(texts) == 1 and activity.code in texts[0]
    with app.app_context():
        assert Signup.select().count() == 1
    # The same words again are a new event (the app's messageId is content-based, the event id is not).
    assert len(say(client, app, phone, "报名 1")) == 1


def test_a_reply_is_queued_before_the_record_so_the_commit_waits_for_the_disk(
        app, client, phone, place, statements, caplog):
    with app.app_context():
        resident = make.resident(place.north, phone_number=PHONE)
    assert post(client, *phone.received(PHONE, "你好")).status_code == 204  # the conversation's own write
    caplog.clear()
    assert post(client, *phone.received(PHONE, "余额")).status_code == 204
    sent = statements()
    notice, record = (next(i for i, s in enumerate(sent) if s.startswith(f'INSERT INTO "{table}"'))
                      for table in ("notice", "inbound"))
    # Unlike a Twilio reply, this one is lost if the commit is: the app has had its 204.
    assert notice < record and (is_postgresql() or not light(sent))
    with app.app_context():
        assert {n.resident_id for n in Notice.select()} == {resident.id}


def test_a_residents_journey_in_chinese_is_one_sms_per_message(app, client, phone, place):
    with app.app_context():
        activity = make.activity(make.coordinator(place.north), place.north, title="楼道清扫")
    w = worker(app, phone)
    assert "姓名" in say(client, app, phone, "你好", w)[0]
    assert "陈桂兰" in say(client, app, phone, "我叫陈桂兰", w)[0]
    assert "北社区" in say(client, app, phone, "1", w)[0]
    (welcome,) = say(client, app, phone, "北", w)
    assert "欢迎您，陈桂兰" in welcome
    (listing,) = say(client, app, phone, "有什么活动", w)
    assert "楼道清扫" in listing
    (joined,) = say(client, app, phone, "1", w)
    assert activity.code in joined
    (balance,) = say(client, app, phone, "我有多少分", w)
    assert "0" in balance
    with app.app_context():
        resident = Resident.get(Resident.phone == PHONE)
        assert Notice.select().where(Notice.resident == resident.id).count() == 4  # from the welcome on
        assert Signup.get(Signup.resident == resident.id).activity_id == activity.id
        assert Notice.select().where(Notice.kind != "reply").count() == 0  # one SMS per action
    assert len(phone.texts_to(PHONE)) == 7


def test_the_phone_offline_for_a_while_loses_nothing_and_keeps_the_order(app, client, phone, place):
    with app.app_context():
        make.resident(place.north, phone_number=PHONE)
    for text in ("余额", "明细", "商品"):
        assert post(client, *phone.received(PHONE, text)).status_code == 204
    phone.failing = 1
    w = worker(app, phone)
    drain(app, w)  # the first reply meets the 503s and waits for its retry
    with app.app_context():
        first, *later = Notice.select().order_by(Notice.id)
        assert (first.status, first.attempts) == (Notice.PENDING, 1) and "503" in first.last_error
        assert [(n.status, n.attempts) for n in later] == [(Notice.PENDING, 0)] * 2  # they wait their turn
        Notice.update(next_attempt_at=datetime.datetime(2000, 1, 1)).execute()
    drain(app, w)
    texts = phone.texts_to(PHONE)
    assert len(texts) == 3 and "余额" in texts[0] and "记录" in texts[1] and "商品" in texts[2]  # in order
    with app.app_context():
        assert {n.status for n in Notice.select()} == {Notice.SENT}


def test_the_daily_cap_holds_what_is_over_it_and_loses_nothing(app, client, phone, place):
    with app.app_context():
        make.resident(place.north, phone_number=PHONE)
    for text in ("余额", "明细", "商品"):
        post(client, *phone.received(PHONE, text))
    w = worker(app, phone, daily_limit=2)
    drain(app, w)
    assert len(phone.texts_to(PHONE)) == 2
    with app.app_context():
        held = Notice.get(Notice.status == Notice.PENDING)
        assert held.attempts == 0 and "daily" in held.last_error
        # A day later the cap has room again.
        Notice.update(sent_at=datetime.datetime(2000, 1, 1)).where(Notice.status == Notice.SENT).execute()
        Notice.update(next_attempt_at=datetime.datetime(2000, 1, 1)).where(Notice.id == held.id).execute()
    drain(app, w)
    assert len(phone.texts_to(PHONE)) == 3


NEIGHBOURS = [f"+861390013900{i}" for i in range(6)]


def neighbours_text(app, client, phone, place, numbers, texts):
    with app.app_context():
        for number in numbers:
            make.resident(place.north, phone_number=number)
    for number in numbers:
        for text in texts:
            assert post(client, *phone.received(number, text)).status_code == 204


def test_a_slow_phone_gets_a_batch_side_by_side_and_each_persons_replies_in_order(app, client, phone, place):
    neighbours_text(app, client, phone, place, NEIGHBOURS, ("余额", "明细"))
    phone.latency = 0.2  # a phone on poor Wi-Fi: one at a time, the twelve would take 2.4 s
    w = worker(app, phone)

    async def run_until_all_are_sent():  # the worker's own loop, as `python -m botapp.worker` runs it
        stop = asyncio.Event()
        loop = asyncio.create_task(w.run(idle=0.05, stop=stop))
        while Notice.select().where(Notice.status != Notice.SENT).count():
            await asyncio.sleep(0.05)
        stop.set()
        await loop

    with app.app_context():
        asyncio.run(asyncio.wait_for(run_until_all_are_sent(), 60))
    assert phone.most_at_once > 1
    for number in NEIGHBOURS:
        balance, history = phone.texts_to(number)
        assert "余额" in balance and "记录" in history


def test_the_daily_cap_is_exact_when_neighbours_text_at_once(app, client, phone, place):
    neighbours_text(app, client, phone, place, NEIGHBOURS[:3], ("余额",))
    phone.latency = 0.1  # each send is still out while the next one checks the count
    drain(app, worker(app, phone, daily_limit=2))
    assert len(phone.sent) == 2
    with app.app_context():
        [held] = Notice.select().where(Notice.status == Notice.PENDING)
        assert "daily" in held.last_error


def test_delivery_events_are_recorded_on_the_notice(app, client, phone, place):
    with app.app_context():
        make.resident(place.north, phone_number=PHONE)
    say(client, app, phone, "余额")
    message_id = phone.sent[-1][2]
    body, headers = phone.event("sms:delivered", {"messageId": message_id, "phoneNumber": PHONE,
                                                  "deliveredAt": "2026-12-01T10:00:05.000+08:00"})
    assert post(client, body, headers).status_code == 204
    with app.app_context():
        assert Notice.get(Notice.provider_id == message_id).delivery_status == "delivered"


def test_the_cli_checks_the_phone_and_registers_the_webhooks_once(app, phone, place):
    runner = app.test_cli_runner()
    checked = runner.invoke(args=["sms-gateway", "check"])
    assert checked.exit_code == 0 and "pass" in checked.output
    first = runner.invoke(args=["sms-gateway", "register-webhook"])
    assert first.exit_code == 0, first.output
    assert {(h["url"], h["event"]) for h in phone.webhooks} == {
        ("https://linli.example/sms/android", e) for e in ("sms:received", "sms:sent", "sms:delivered", "sms:failed")}
    assert "already registered" in runner.invoke(args=["sms-gateway", "register-webhook"]).output
    assert len(phone.webhooks) == 4
    app.config["ANDROID_SMS_PASSWORD"] = "wrong"
    refused = runner.invoke(args=["sms-gateway", "check"])
    assert refused.exit_code != 0 and "refused" in refused.output


def test_the_settings_build_the_sender_of_their_provider(phone, tmp_path):
    def sender(**env):
        return build_sms_sender(Settings.from_env(env, instance_dir=tmp_path))

    assert sender() is None  # development: the log
    assert isinstance(sender(SMS_PROVIDER="android", ANDROID_SMS_URL=phone.url, ANDROID_SMS_USERNAME="u",
                             ANDROID_SMS_PASSWORD="p"), AndroidSender)


def test_a_queued_code_is_redacted_in_logs():
    assert outbox.redacted("您的兑换码：123456。") == "您的兑换码：******。"


def test_no_log_line_on_the_android_path_carries_the_number_or_a_code(app, client, phone, place, every_logger_at_debug):
    """Webhooks in (signed, forged, redelivered), replies out (the phone offline, then back), a code."""
    with app.app_context():
        make.resident(place.north, phone_number=PHONE)
    w = worker(app, phone)
    body, headers = phone.received(PHONE, "兑换码")
    assert post(client, body, headers).status_code == 204
    assert post(client, body, headers).status_code == 204  # redelivered
    assert post(client, body, {**headers, "X-Signature": "0" * 64}).status_code == 403
    phone.failing = 2
    for _ in range(3):
        drain(app, w)
        with app.app_context():  # the worker waits out its backoff; here, at once
            Notice.update(next_attempt_at=datetime.datetime(2000, 1, 1)).execute()
    (sent,) = phone.texts_to(PHONE)
    code = re.search(r"(?<!\d)\d{6}(?!\d)", sent).group()
    failed = phone.event("sms:failed", {"messageId": phone.sent[-1][2], "phoneNumber": PHONE, "reason": "to " + PHONE,
                                        "failedAt": "2026-12-01T10:00:05.000+08:00"})
    assert post(client, *failed).status_code == 204
    assert any("android" in line for line in log_lines(every_logger_at_debug))
    assert leaks(every_logger_at_debug, [code]) == []
