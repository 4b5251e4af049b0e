"""The notices outbox: rendering, channel choice, the real twilio Client, retries, leases, workers."""

import asyncio
import contextlib
import datetime
import logging
import re
from pathlib import Path

import community_factory as make
import pytest
from fake_telegram import FakeTelegram
from fake_twilio import FROM, RecordingHttp
from telegram import Bot
from twilio.rest import Client

import ledger
from botapp import outbox, sms
from botapp.dialogue import Dialogue
from botapp.models import Inbound, forget_old_inbound
from botapp.segments import segments
from botapp.worker import Pacer, SmsSender, TelegramSender, Worker
from community import Community, Notice, Resident, contacts
from community import notices as kinds
from community.awards import confirm_participation, reject_participation, report_deed, reverse_award
from community.notices import queue_reply
from ledger import db
from ledger.models import utcnow


@pytest.fixture
def dialogue():
    return Dialogue(str(Path(__file__).resolve().parent.parent / "translations"))


@pytest.fixture
def world(db):
    place = make.build_place()
    coordinator = make.coordinator(place.north)
    return place, coordinator


def sms_worker(dialogue, http):
    client = Client("ACtest", "secret", http_client=http)
    return Worker(dialogue, sms=SmsSender(client, FROM, status_callback="https://x.example/sms/status", rate=0))


def confirmed_resident(world, **kwargs):
    place, coordinator = world
    resident = make.resident(place.north, "王阿姨", **kwargs)
    confirm_participation(coordinator, report_deed(coordinator, resident, "volunteering", "扫楼道"))
    return resident


def drain(worker):
    return asyncio.run(worker.drain_once())


def test_a_confirmation_reaches_the_resident_by_sms_through_twilio(world, dialogue):
    resident = confirmed_resident(world)
    http = RecordingHttp()
    assert drain(sms_worker(dialogue, http)) == 1
    [request] = http.requests
    assert request["method"] == "POST" and request["uri"].endswith("/Accounts/ACtest/Messages.json")
    assert request["data"]["To"] == resident.phone and request["data"]["From"] == FROM
    assert "1" in request["data"]["Body"] and "扫楼道" in request["data"]["Body"]
    assert request["data"]["StatusCallback"] == "https://x.example/sms/status"
    notice = Notice.get(Notice.resident == resident.id)
    assert (notice.status, notice.channel, notice.provider_id) == (Notice.SENT, "sms", "SM" + "1".zfill(32))
    assert drain(sms_worker(dialogue, http)) == 0  # nothing is sent twice


def test_notices_are_rendered_in_the_residents_language_within_two_segments(world, dialogue):
    place, coordinator = world
    resident = make.resident(place.north, language="en")
    activity = make.activity(coordinator, place.north, title="Very long title " * 6, place="x" * 90)
    make.activities.join(resident, activity, staff=coordinator)
    notice = Notice.get(Notice.resident == resident.id)
    text = outbox.render(notice, resident, dialogue, "sms")
    assert text.startswith("[North] Signed up") and segments(text) <= 2
    Resident.update(language="zh_Hans").where(Resident.id == resident.id).execute()
    chinese = outbox.render(notice, Resident.get_by_id(resident.id), dialogue, "sms")
    assert chinese.startswith("【北社区】已报名") and segments(chinese) <= 2


def test_a_rejection_says_whom_to_ask_and_a_taking_back_says_what_for(world, dialogue):
    place, coordinator = world
    resident = make.resident(place.north)
    Community.update(phone="0594-2345678").where(Community.id == place.north.id).execute()
    rejected = reject_participation(coordinator, report_deed(coordinator, resident, "volunteering", "扫楼道"), "没来")
    notice = Notice.get((Notice.resident == resident.id) & (Notice.kind == kinds.REJECTED))
    text = outbox.render(notice, Resident.get_by_id(resident.id), dialogue, "sms")
    assert rejected.state == "rejected" and text.startswith("【北社区】") and "0594-2345678" in text
    deed = confirm_participation(coordinator, report_deed(coordinator, resident, "volunteering", "扫楼道"))
    reverse_award(coordinator, deed, "记错了人")
    notice = Notice.get((Notice.resident == resident.id) & (Notice.kind == kinds.REVERSED))
    text = outbox.render(notice, Resident.get_by_id(resident.id), dialogue, "sms")
    assert "扫楼道" in text and "退回" in text and "冲正" not in text and segments(text) <= 2


def test_unconfigured_channels_go_to_the_log_with_a_masked_number(world, dialogue, caplog):
    resident = confirmed_resident(world)
    with caplog.at_level(logging.INFO, logger="botapp.worker"):
        drain(Worker(dialogue))
    notice = Notice.get(Notice.resident == resident.id)
    assert (notice.status, notice.channel) == (Notice.SENT, contacts.LOG)
    assert "****" in caplog.text and resident.phone not in caplog.text


def test_opted_out_residents_without_telegram_are_skipped(world, dialogue):
    resident = confirmed_resident(world)
    contacts.set_opted_out(resident, contacts.SMS)
    http = RecordingHttp()
    drain(sms_worker(dialogue, http))
    assert http.requests == []
    assert Notice.get(Notice.resident == resident.id).status == outbox.SKIPPED


def test_a_provider_failure_is_retried_with_backoff_then_marked_failed(world, dialogue):
    resident = confirmed_resident(world)
    http = RecordingHttp(fail_with=[429] * 10)
    worker = sms_worker(dialogue, http)
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        drain(worker)
        notice = Notice.get(Notice.resident == resident.id)
        assert notice.attempts == attempt
        if attempt < outbox.MAX_ATTEMPTS:
            assert notice.status == Notice.PENDING and notice.next_attempt_at > utcnow()
            assert "429" in notice.last_error
            Notice.update(next_attempt_at=utcnow()).where(Notice.id == notice.id).execute()
    assert Notice.get(Notice.resident == resident.id).status == Notice.FAILED
    assert len(http.requests) == outbox.MAX_ATTEMPTS


def test_a_refused_number_fails_at_once(world, dialogue):
    resident = confirmed_resident(world)
    drain(sms_worker(dialogue, RecordingHttp(fail_with=[400])))
    notice = Notice.get(Notice.resident == resident.id)
    assert notice.status == Notice.FAILED and notice.attempts == 1


def test_a_worker_that_dies_after_claiming_loses_nothing(world, dialogue):
    resident = confirmed_resident(world)
    [claimed] = outbox.claim()  # this worker "dies" here, before sending
    assert outbox.claim() == []  # nobody else takes it while its lease runs
    later = utcnow() + outbox.LEASE + datetime.timedelta(seconds=1)
    [again] = outbox.claim(now=later)
    assert again.id == claimed.id and again.attempts == 2
    assert again.resident_id == resident.id


def test_two_workers_never_send_the_same_notice(world, dialogue):
    place, coordinator = world
    for i in range(6):
        confirmed_resident(world, phone_number=f"139{i:08d}")
    first, second = outbox.claim(limit=4), outbox.claim(limit=4)
    assert len(first) == 4 and len(second) == 2
    assert not {n.id for n in first} & {n.id for n in second}


def test_a_claim_takes_each_persons_oldest_notice_and_costs_no_more_for_a_long_queue(world):
    place, _ = world
    newcomer, resident = "+8613900000001", make.resident(place.north, "王阿姨", phone_number="13900000002")
    with db.atomic():
        for text in ("1", "2"):
            queue_reply(newcomer, f"newcomer {text}")
            queue_reply(resident.phone, f"resident {text}", resident=resident)
    first = outbox.claim(limit=10)
    assert [outbox.reply_text(n) for n in first] == ["newcomer 1", "resident 1"]
    outbox.mark_retry(first[0], "phone unreachable", retry_after=60)
    # The resident's second is free once the first is taken; the newcomer's waits for its first's retry.
    assert [outbox.reply_text(n) for n in outbox.claim(limit=10)] == ["resident 2"]

    def cost_of_a_claim(queued):
        """A claim of 20 with `queued` more behind them, and as many before them waiting for a retry."""
        with db.atomic():
            for i in range(queued):
                queue_reply(f"+86136{i:08d}", "x")
            Notice.update(next_attempt_at=utcnow() + datetime.timedelta(hours=1)).where(
                Notice.address.startswith("+86136")).execute()
            for i in range(20 + queued):
                queue_reply(f"+86137{i:08d}", "x")
        with db.atomic(), reads() as read:
            assert len(outbox.claim(limit=20)) == 20
        return read()

    # At most in proportion to the queue (PostgreSQL, on statistics from before it grew; SQLite
    # and fresh statistics: the same for any length); it was in proportion to its square.
    short, long = cost_of_a_claim(50), cost_of_a_claim(1000)
    assert long < 1.5 * (1000 / 50) * short, (short, long)


@contextlib.contextmanager
def reads():
    """What the database did meanwhile: SQLite's virtual machine steps, or the rows PostgreSQL read
    from the notices (this transaction's own counts)."""
    if ledger.is_postgresql():
        count = ("SELECT coalesce(sum(seq_tup_read + idx_tup_fetch), 0)::bigint FROM pg_stat_xact_user_tables "
                 "WHERE relname = 'notice'")
        before = db.execute_sql(count).fetchone()[0]
        after = []
        yield lambda: after[0] - before
        after.append(db.execute_sql(count).fetchone()[0])
        return
    steps = [0]
    connection = db.connection()
    connection.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1) or 0, 100)
    try:
        yield lambda: steps[0]
    finally:
        connection.set_progress_handler(None, 100)


def test_delivery_status_callbacks_are_recorded(world, dialogue):
    resident = confirmed_resident(world)
    drain(sms_worker(dialogue, RecordingHttp()))
    notice = Notice.get(Notice.resident == resident.id)
    assert outbox.record_delivery_status(notice.provider_id, "delivered") == 1
    assert Notice.get_by_id(notice.id).delivery_status == "delivered"
    assert outbox.record_delivery_status("SMunknown", "failed", "30003") == 0


def test_reminders_are_queued_once_and_sent(world, dialogue):
    place, coordinator = world
    resident = make.resident(place.north)
    activity = make.activity(coordinator, place.north, starts_at=utcnow() + datetime.timedelta(hours=20))
    make.activities.join(resident, activity, now=utcnow() - datetime.timedelta(days=1))
    assert kinds.queue_reminders() == 1 and kinds.queue_reminders() == 0
    http = RecordingHttp()
    while drain(sms_worker(dialogue, http)):
        pass
    bodies = [r["data"]["Body"] for r in http.requests]
    assert any(body.startswith("【北社区】提醒") and activity.code in body for body in bodies)


def test_the_pacer_keeps_the_overall_and_per_chat_rates():
    clock = [0.0]
    pacer = Pacer(rate=30, per_key=1.0, clock=lambda: clock[0])
    delays = [pacer.delay(key) for key in ("a", "b", "a", "a")]
    assert delays[0] == 0
    assert delays[1] == pytest.approx(1 / 30)
    assert delays[2] == pytest.approx(1.0)  # "a" again: one a second per chat
    assert delays[3] == pytest.approx(2.0)


def test_telegram_notices_go_through_ptbs_bot_and_a_blocked_bot_fails_for_good(world, dialogue):


    place, coordinator = world
    blocked = confirmed_resident(world)
    Resident.update(telegram_id=4343).where(Resident.id == blocked.id).execute()
    linked = confirmed_resident(world, phone_number="13900139000")
    Resident.update(telegram_id=4242).where(Resident.id == linked.id).execute()

    with FakeTelegram("123:abc") as telegram:
        telegram.fail_next("sendMessage", "Forbidden: bot was blocked by the user", error_code=403, chat_id=4343)

        async def go():
            bot = Bot("123:abc", base_url=telegram.base_url)
            async with bot:
                worker = Worker(dialogue, telegram=TelegramSender(bot))
                while await worker.drain_once():
                    pass

        asyncio.run(go())
        texts = telegram.texts(4242) + telegram.texts(4343)
    notices = {n.resident_id: n for n in Notice.select()}
    ok, refused = notices[linked.id], notices[blocked.id]
    assert (ok.status, ok.channel) == (Notice.SENT, "telegram") and ok.provider_id
    assert refused.status == Notice.FAILED and "blocked" in refused.last_error
    assert any("扫楼道" in text for text in texts)


def test_old_telegram_update_ids_are_forgotten(db):
    Inbound.create(key="tg:1:5", created_at=utcnow() - datetime.timedelta(days=9))
    Inbound.create(key="tg:1:6")
    assert forget_old_inbound() == 1
    assert [i.key for i in Inbound.select()] == ["tg:1:6"]


def test_rendering_long_emoji_titles_terminates_and_fits(world, dialogue):
    place, coordinator = world
    resident = make.resident(place.north, language="en")
    activity = make.activity(coordinator, place.north, title="🎉" * 90)
    make.activities.join(resident, activity)
    make.activities.cancel_activity(coordinator, activity, "☔" * 150)
    for notice in Notice.select().where(Notice.resident == resident.id):
        assert segments(outbox.render(notice, resident, dialogue, "sms")) <= 2


class BrokenSender:
    """A sender with a bug: not a provider failure, just an exception."""

    name, daily_limit = "sms", 0
    pacer = Pacer(rate=0)

    async def send(self, resident, text):
        raise RuntimeError("a bug in the sender")


def test_an_unexpected_error_is_recorded_on_the_notice_and_the_batch_goes_on(world, dialogue):
    first = confirmed_resident(world)
    second = confirmed_resident(world, phone_number="13900139000")
    worker = Worker(dialogue, sms=BrokenSender())
    assert drain(worker) == 2
    for resident in (first, second):
        notice = Notice.get(Notice.resident == resident.id)
        assert notice.status == Notice.PENDING and "a bug in the sender" in notice.last_error


def test_a_notice_no_worker_could_finish_gives_up_after_its_tries(world):
    resident = confirmed_resident(world)
    Notice.update(status=outbox.SENDING, attempts=outbox.MAX_ATTEMPTS,
                  next_attempt_at=utcnow() - datetime.timedelta(seconds=1)).execute()
    assert outbox.claim() == []
    assert Notice.get(Notice.resident == resident.id).status == Notice.FAILED


def test_a_slow_worker_cannot_overwrite_a_takeover(world):
    confirmed_resident(world)
    [mine] = outbox.claim()
    [theirs] = outbox.claim(now=utcnow() + outbox.LEASE + datetime.timedelta(seconds=1))
    outbox.mark_sent(theirs, "sms", "SMtheirs")
    outbox.mark_failed(mine, "too late")
    notice = Notice.get_by_id(mine.id)
    assert (notice.status, notice.provider_id) == (Notice.SENT, "SMtheirs")


def test_a_stop_sent_before_registration_is_respected(world, dialogue):
    sms.receive(dialogue, "SMstop", "+8613800138000", "STOP")
    resident = confirmed_resident(world, phone_number="13800138000")  # registered by staff afterwards
    http = RecordingHttp()
    drain(sms_worker(dialogue, http))
    assert http.requests == []
    assert Notice.get(Notice.resident == resident.id).status == outbox.SKIPPED


def test_a_sent_code_is_not_kept_in_the_database(world, dialogue):
    """The six digits travel in the notice only until the SMS is handed over; the code itself is
    kept as a keyed hash."""
    from catalog import cards
    from catalog.models import CounterCode

    place, coordinator = world
    resident = make.resident(place.north, "王阿姨")
    card = cards.issue_card(coordinator, resident, "secret")
    assert cards.send_card_code(make.clerk(place.north), card)
    http = RecordingHttp()
    assert drain(sms_worker(dialogue, http)) == 1
    digits = re.search(r"(?<!\d)\d{6}(?!\d)", http.requests[0]["data"]["Body"]).group()
    [notice] = Notice.select().where(Notice.kind == cards.COUNTER_CODE)
    assert notice.status == Notice.SENT and digits not in notice.params and "******" in notice.params
    assert all(digits not in row.code for row in CounterCode.select())
    assert outbox.render(notice, resident, dialogue, "sms", redact=True)  # staff still see what was sent
