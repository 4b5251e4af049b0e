"""Inbound SMS through the real Twilio webhook: signatures, TwiML, redelivery, rate limit, opt-out."""

import itertools
import xml.etree.ElementTree as ET

import community_factory as make
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from botapp.models import Inbound
from botapp.sms import RATE_LIMIT
from community import Resident, Signup
from web import create_app

TOKEN = "test-auth-token"
BASE = "https://linli.example"
PHONE = "+8613800138000"
_sids = itertools.count(1)


@pytest.fixture
def app(db_url):


    return create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "t",
                       "PUBLIC_BASE_URL": BASE, "TWILIO_AUTH_TOKEN": TOKEN})


@pytest.fixture
def place(app):
    with app.app_context():
        return make.build_place()


def signed_post(client, path, form, token=TOKEN):
    signature = RequestValidator(token).compute_signature(BASE + path, form)
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature})


def sms(client, body, sender=PHONE, sid=None):
    """Send one SMS; return the reply text, or None when TwiML carries no message."""
    form = {"MessageSid": sid or f"SM{next(_sids):032d}", "From": sender, "To": "+15005550006", "Body": body}
    response = signed_post(client, "/sms/inbound", form)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/xml"
    message = ET.fromstring(response.get_data(as_text=True)).find("Message")
    return None if message is None else message.text


def test_unsigned_forged_and_wrongly_signed_requests_are_refused(client, place):
    form = {"MessageSid": "SM1", "From": PHONE, "Body": "BAL"}
    assert client.post("/sms/inbound", data=form).status_code == 403
    assert client.post("/sms/inbound", data=form, headers={"X-Twilio-Signature": "forged"}).status_code == 403
    assert signed_post(client, "/sms/inbound", form, token="another-token").status_code == 403
    tampered = RequestValidator(TOKEN).compute_signature(BASE + "/sms/inbound", {**form, "Body": "HELP"})
    assert client.post("/sms/inbound", data=form, headers={"X-Twilio-Signature": tampered}).status_code == 403
    assert Inbound.select().count() == 0


def test_the_webhook_is_closed_without_an_auth_token(db_url):


    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "t", "PUBLIC_BASE_URL": BASE})
    form = {"MessageSid": "SM1", "From": PHONE, "Body": "BAL"}
    assert signed_post(app.test_client(), "/sms/inbound", form, token="").status_code == 403


def test_a_new_number_registers_by_sms_and_joins(client, place, app):
    assert sms(client, "hello") is not None  # asks for a name
    choices = sms(client, "王阿姨")  # asks for the community: "2. 北社区"
    number = next(line.split(".")[0] for line in choices.splitlines() if "北社区" in line)
    reply = sms(client, number)
    assert "王阿姨" in reply
    resident = Resident.get(Resident.phone == PHONE)
    assert resident.display_name == "王阿姨" and resident.community.code == "N1"
    with app.app_context():
        activity = make.activity(make.coordinator(place.north), place.north)
    listing = sms(client, "ＬＩＳＴ")  # full-width letters
    assert activity.code in listing
    assert activity.code in sms(client, f"报名{activity.code.lower()}")
    assert Signup.get(Signup.resident == resident.id).state == Signup.SIGNED_UP


def test_a_redelivered_message_sid_has_no_second_effect(client, place, app):
    with app.app_context():
        resident = make.resident(place.north, phone_number=PHONE)
        activity = make.activity(make.coordinator(place.north), place.north, capacity=1)
    first = sms(client, f"JOIN {activity.code}", sid="SMsame")
    again = sms(client, f"JOIN {activity.code}", sid="SMsame")
    assert first == again and activity.code in first
    assert Signup.select().where(Signup.resident == resident.id).count() == 1
    assert Inbound.select().where(Inbound.key == "sms:SMsame").count() == 1
    assert Signup.select().where(Signup.activity == activity.id).count() == 1
    assert activity.__class__.get_by_id(activity.id).taken == 1


def test_opted_out_numbers_get_no_reply_until_they_start_again(client, place, app):
    with app.app_context():
        make.resident(place.north, phone_number=PHONE)
    assert sms(client, "退订") is not None
    assert Resident.get(Resident.phone == PHONE).sms_opt_out
    assert sms(client, "BAL") is None
    assert sms(client, "HELP") is None
    assert sms(client, "START") is not None
    assert not Resident.get(Resident.phone == PHONE).sms_opt_out
    assert sms(client, "BAL") is not None


def test_a_flood_gets_one_polite_reply_then_silence(client, place, app):
    with app.app_context():
        make.resident(place.north, phone_number=PHONE)
    replies = [sms(client, "BAL") for _ in range(RATE_LIMIT + 3)]
    assert all(r is not None for r in replies[:RATE_LIMIT])
    assert replies[RATE_LIMIT] is not None and replies[RATE_LIMIT] != replies[0]
    assert replies[RATE_LIMIT + 1:] == [None, None]
    other = "+8613900139000"
    assert sms(client, "hi", sender=other) is not None  # the limit is per number


def test_unusable_senders_get_no_reply(client, place):
    assert sms(client, "BAL", sender="LINLI") is None
    assert sms(client, "BAL", sender="") is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.text(max_size=1600),
    st.text(alphabet=st.characters(categories=["Cf", "Mn", "So", "Lo", "Zs"]), max_size=200),
    st.sampled_from(["\x00", "\u202eBAL", "JOIN \u200b", "报名", "JOIN " + "9" * 500, "😀" * 400]),
))
def test_any_body_gets_an_answer_never_a_500(client, place, app, body):
    with app.app_context():
        if not Resident.select().where(Resident.phone == PHONE).exists():
            make.resident(place.north, phone_number=PHONE)
    form = {"MessageSid": f"SM{next(_sids):032d}", "From": PHONE, "Body": body}
    response = signed_post(client, "/sms/inbound", form)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "Error" not in text
    # keep the flood limit out of the way of the property
    Inbound.delete().execute()


def test_stop_always_gets_through_and_more_is_not_counted(client, place, app):
    with app.app_context():
        make.resident(place.north, phone_number=PHONE)
    for _ in range(RATE_LIMIT):
        assert sms(client, "MORE") is not None
    for _ in range(RATE_LIMIT):
        assert sms(client, "BAL") is not None
    assert sms(client, "BAL") is not None and sms(client, "BAL") is None  # the polite reply, then silence
    assert sms(client, "STOP") is not None
    assert Resident.get(Resident.phone == PHONE).sms_opt_out


def test_a_chinese_name_that_starts_like_a_command_word_is_a_name(client, place):
    sms(client, "你好")
    choices = sms(client, "我的名字是王伟")
    number = next(line.split(".")[0] for line in choices.splitlines() if "北社区" in line)
    sms(client, number)
    assert Resident.get(Resident.phone == PHONE).display_name == "我的名字是王伟"
