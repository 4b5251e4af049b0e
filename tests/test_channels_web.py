"""The resident channels seen from the staff side: the SMS journey end to end, the simulator
page and CLI, and announcements with their cost preview."""

import asyncio
from pathlib import Path

import community_factory as make
from fake_twilio import BASE, FROM, TOKEN, RecordingHttp, signed_post
from twilio.rest import Client
from webforms import Browser

import ledger
from botapp.dialogue import Dialogue
from botapp.worker import SmsSender, Worker
from catalog.models import CounterCode
from community import Notice, Resident, Signup, contacts
from community.awards import confirm_participation, report_deed
from community.notices import ANNOUNCEMENT
from web import create_app

ROOT = Path(__file__).resolve().parent.parent
PHONE = "+8613800138000"


def test_an_sms_residents_journey_from_registration_to_receipt(app, runner):
    with app.app_context():
        place = make.build_place()
        coordinator = make.coordinator(place.north)
        activity = make.activity(coordinator, place.north)

    def say(text):
        result = runner.invoke(args=["chat", PHONE], input=text + "\n")
        assert result.exit_code == 0, result.output
        return result.output

    say("你好")
    assert "李叔" in say("我叫李叔")
    choices = say("1")
    number = next(line.split(".")[0] for line in choices.splitlines() if "北社区" in line)
    assert "李叔" in say(number)
    assert activity.title in say("有什么活动？")
    assert "SMS segment" in say("报名 1")

    with app.app_context():
        resident = Resident.get(Resident.phone == PHONE)
        signup = Signup.get(Signup.resident == resident.id)
        make.begin(signup.activity)  # the day of the activity
        confirm_participation(coordinator, signup)
        http = RecordingHttp()
        worker = Worker(Dialogue(str(ROOT / "translations")),
                        sms=SmsSender(Client("ACx", "secret", http_client=http), FROM, rate=0))
        while asyncio.run(worker.drain_once()):
            pass
    receipts = [r["data"]["Body"] for r in http.requests if r["data"]["To"] == PHONE]
    assert any("余额 1" in body for body in receipts), receipts
    history = say("明细")
    assert "+1" in history and "= 1" in history


def test_the_chat_command_stays_silent_for_opted_out_numbers(app, runner):
    with app.app_context():
        make.build_place()
    runner.invoke(args=["chat", PHONE], input="退订\n")
    assert "订阅" in runner.invoke(args=["chat", PHONE], input="积分\n").stdout  # once a day, how to come back
    assert runner.invoke(args=["chat", PHONE], input="积分\n").stdout.strip() == "(no reply)"


def simulate(browser, phone, message, follow_redirects=True):
    """On the simulator page: type a phone number and a message, and send it."""
    browser.get("/simulator")
    return browser.submit(has="message", phone=phone, message=message, follow_redirects=follow_redirects)


def test_the_simulator_page_shows_replies_segments_and_notices(client, app):
    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="sim-coord")
        resident = make.resident(place.north, "陈阿婆", phone_number=PHONE)
        activity = make.activity(make.coordinator(place.north), place.north)
        make.activities.join(resident, activity, staff=make.coordinator(place.north))
    browser = Browser(client)
    browser.login("sim-coord")
    page = simulate(browser, "138 0013 8000", "积分").get_data(as_text=True)
    assert "您的积分余额：0 分" in page
    assert "1 条短信" in page
    assert activity.code in page  # the signed-up notice, rendered as the SMS it would be
    assert "13800138000" not in page  # the transcript masks the number


def test_the_simulator_keeps_its_transcript_on_the_server_and_its_registrations_at_home(client, app):
    from community import AuditEvent

    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="sim-coord")
    browser = Browser(client)
    browser.login("sim-coord")
    new_number = "139 0013 9999"
    for text in ("你好", "我叫张三", "1"):
        simulate(browser, new_number, text)
    page = simulate(browser, new_number, "3").get_data(as_text=True)  # 3. 南社区: not this coordinator's
    assert "其他社区" in page
    with app.app_context():
        assert not Resident.select().where(Resident.phone == "+8613900139999").exists()
    simulate(browser, new_number, "2")  # 2. 北社区: theirs
    with app.app_context():
        assert Resident.get(Resident.phone == "+8613900139999").community_id == place.north.id
        assert AuditEvent.select().where(AuditEvent.action == "simulator.message").count() >= 4
    for n in range(35):  # a long session: the cookie stays small, the page shows the last 30
        simulate(browser, new_number, f"余额 {n}")
    cookie = next(c for c in client._cookies.values() if c.key == "session")
    assert len(cookie.value) < 1000
    other = Browser(app.test_client())
    with app.app_context():
        make.coordinator(place.north, username="sim-coord2")
    other.login("sim-coord2")
    assert "139****9999" not in other.get("/simulator").get_data(as_text=True)  # not the next person's


def test_an_announcement_shows_its_cost_then_reaches_every_reachable_resident(client, app):
    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="ann-coord")
        reachable = [make.resident(place.north) for _ in range(3)]
        opted_out = make.resident(place.north)
        contacts.set_opted_out(opted_out, contacts.SMS)
        elsewhere = make.resident(place.south)
    browser = Browser(client)
    browser.login("ann-coord")
    form = {"community": place.north.id, "text": "周六上午九点社区大扫除，欢迎参加！"}
    browser.get("/announce")
    assert [name for name, _, _ in browser.find(has="text").buttons] == ["preview"]  # no sending unseen
    preview = browser.submit(has="text", button="preview", follow_redirects=False, **form)
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200 and 'id="preview"' in page
    assert Notice.select().where(Notice.kind == ANNOUNCEMENT).count() == 0
    sent = browser.submit(has="text", button="send", follow_redirects=False, **form)
    assert sent.status_code == 302
    to = {n.resident_id for n in Notice.select().where(Notice.kind == ANNOUNCEMENT)}
    assert to == {r.id for r in reachable}
    assert opted_out.id not in to and elsewhere.id not in to


def test_a_clerk_cannot_announce_or_simulate(client, app):
    with app.app_context():
        place = make.build_place()
        make.clerk(place.north, username="ann-clerk")
    Browser(client).login("ann-clerk")
    assert client.get("/announce").status_code == 403
    assert client.get("/simulator").status_code == 403
    assert ledger.verify().ok


def test_coordinators_see_notices_that_could_not_be_delivered(client, app):
    with app.app_context():
        place = make.build_place()
        coordinator = make.coordinator(place.north, username="fail-coord")
        resident = make.resident(place.north, "赵大爷", phone_number=PHONE)
        confirm_participation(coordinator, report_deed(coordinator, resident, "volunteering", "值守"))
        worker = Worker(Dialogue(str(ROOT / "translations")),
                        sms=SmsSender(Client("ACx", "secret", http_client=RecordingHttp(fail_with=[400])), FROM,
                                      rate=0))
        asyncio.run(worker.drain_once())
    Browser(client).login("fail-coord")
    page = client.get("/").get_data(as_text=True)
    assert 'id="failed-notices"' in page and "赵大爷" in page and "twilio 400" in page


def test_delivery_status_callbacks_must_be_signed(db_url):
    signed_app = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "t",
                             "PUBLIC_BASE_URL": BASE, "TWILIO_AUTH_TOKEN": TOKEN})
    with signed_app.app_context():
        place = make.build_place()
        coordinator = make.coordinator(place.north)
        resident = make.resident(place.north, phone_number=PHONE)
        confirm_participation(coordinator, report_deed(coordinator, resident, "volunteering", "值守"))
        worker = Worker(Dialogue(str(ROOT / "translations")),
                        sms=SmsSender(Client("ACx", "secret", http_client=RecordingHttp()), FROM, rate=0))
        asyncio.run(worker.drain_once())
        sid = Notice.get(Notice.resident == resident.id).provider_id
    client = signed_app.test_client()
    form = {"MessageSid": sid, "MessageStatus": "delivered"}
    assert client.post("/sms/status", data=form).status_code == 403
    assert signed_post(client, "/sms/status", form).status_code == 204
    assert Notice.get(Notice.provider_id == sid).delivery_status == "delivered"


def test_the_simulator_stays_within_the_staff_members_communities_and_hands_out_no_codes(client, app):
    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="sim-north")
        make.resident(place.north, phone_number=PHONE)
        stranger = make.resident(place.east)
    browser = Browser(client)
    browser.login("sim-north")
    other = simulate(browser, stranger.phone, "积分", follow_redirects=False)
    assert other.status_code == 403
    for word in ("兑换码", "CODE", "REDEEM", "绑定"):
        page = simulate(browser, PHONE, word).get_data(as_text=True)
        assert "模拟器不发放" in page
    assert not CounterCode.select().exists()


def test_an_announcement_longer_than_two_segments_is_refused(client, app):
    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="ann-long")
        make.resident(place.north)
    browser = Browser(client)
    browser.login("ann-long")
    form = {"community": place.north.id, "text": "通知" * 80}
    browser.get("/announce")
    browser.submit(has="text", button="preview", **form)
    response = browser.submit(has="text", button="send", follow_redirects=False, **form)
    assert response.status_code == 200 and "2 条短信" in response.get_data(as_text=True)
    assert Notice.select().where(Notice.kind == ANNOUNCEMENT).count() == 0
