"""Who took part is confirmed once an activity has begun; afterwards staff record walk-ins, the
waitlisted and no-shows who came after all, from a picker — each awarded exactly once."""

import community_factory as make
import pytest
from racing import race
from webforms import Browser

import ledger
from catalog import cards
from community import activities, awards
from community.errors import NotPermitted, NotStartedYet
from community.models import Activity, Resident, Signup, Staff


def balance(resident):
    return ledger.balance(Resident.get_by_id(resident.id).account_id)


def test_confirming_before_the_start_is_refused(place, boss):
    resident = make.resident(place.north)
    activity = make.activity(boss, place.north)
    signup = activities.join(resident, activity)
    with pytest.raises(NotStartedYet):
        awards.confirm_participation(boss, signup)
    with pytest.raises(NotStartedYet):
        awards.record_attendance(boss, activity, [resident])
    assert Signup.get_by_id(signup.id).state == Signup.SIGNED_UP and balance(resident) == 0


def test_walk_ins_waitlisted_and_no_shows_who_came_are_confirmed_once(place, boss):
    activity = make.activity(boss, place.north, capacity=1)
    seated, waiting, absent, walk_in = make.residents(place.north, 4)
    activities.join(seated, activity)
    activities.join(waiting, activity)
    activities.join(absent, activity)  # waitlisted too
    make.begin(activity)
    awards.mark_no_show(boss, Signup.get(Signup.resident == seated.id))
    came = [seated, waiting, walk_in]
    confirmed, refused = awards.record_attendance(boss, Activity.get_by_id(activity.id), came)
    assert refused == [] and {s.state for s in confirmed} == {Signup.CONFIRMED}
    again, _ = awards.record_attendance(boss, Activity.get_by_id(activity.id), came)
    assert [s.id for s in again] == [s.id for s in confirmed]
    assert [balance(r) for r in (seated, waiting, absent, walk_in)] == [100, 100, 0, 100]
    assert Activity.get_by_id(activity.id).taken == 3  # seated (kept), waiting and the walk-in
    assert ledger.Transfer.select().count() == 3 and ledger.verify().ok


def test_another_communitys_resident_or_coordinator_is_refused(place, boss):
    activity = make.begin(make.activity(boss, place.north))
    stranger = make.resident(place.south)
    confirmed, refused = awards.record_attendance(boss, activity, [stranger])
    assert confirmed == [] and [type(e) for _, e in refused] == [NotPermitted]
    with pytest.raises(NotPermitted):
        awards.record_attendance(make.coordinator(place.south), activity, [make.resident(place.north)])


def came(activity_id, resident_id, staff_id):
    """One process's click on "they came"."""
    confirmed, refused = awards.record_attendance(Staff.get_by_id(staff_id), Activity.get_by_id(activity_id),
                                                  [Resident.get_by_id(resident_id)])
    return confirmed[0] if confirmed else refused[0][1]


def test_five_clicks_at_once_on_a_walk_in_award_once(db_url, place, boss):
    activity = make.begin(make.activity(boss, place.north))
    walk_in = make.resident(place.north)
    outcomes = race(db_url, [(came, (activity.id, walk_in.id, boss.id))] * 5)
    [signup] = Signup.select().where(Signup.resident == walk_in.id)
    assert outcomes == [f"ok:{signup.id}"] * 5
    assert balance(walk_in) == 100 and ledger.Transfer.select().count() == 1


# --- through the activity page ------------------------------------------------------------------


def test_the_picker_finds_by_name_unit_phone_fragment_and_card(app, client):
    with app.app_context():
        place = make.build_place()
        boss = make.coordinator(place.north, username="coord")
        elder = make.resident(place.north, "陈桂兰", phone_number="13900139123", unit_label="5号楼2单元")
        other = make.resident(place.north, "王伯", phone_number="13700137000")
        card = cards.issue_card(boss, other, app.config["SECRET_KEY"]).code
        activity = make.activity(boss, place.north, title="楼道清扫")
    browser = Browser(client)
    browser.login("coord")
    page = browser.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert 'name="q"' not in page and "活动开始后" in page  # nothing to record before it begins
    with app.app_context():
        make.begin(activity)
    browser.get(f"/activities/{activity.id}")
    for typed, name in (("桂兰", "陈桂兰"), ("5号楼", "陈桂兰"), ("9123", "陈桂兰"), (card, "王伯")):
        browser.submit(has="q", q=typed)
        picker = browser.find(f"/activities/{activity.id}/attendance")
        assert [f.value for f in picker.fields if f.name == "resident"] == [
            str(elder.id if name == "陈桂兰" else other.id)], typed
    listing = browser.get("/residents/").get_data(as_text=True)
    assert "王伯" in listing
    found = browser.submit(has="q", q=card).get_data(as_text=True)  # the residents search: the same
    assert "王伯" in found and "陈桂兰" not in found
    browser.get(f"/activities/{activity.id}")
    browser.submit(has="q", q="桂兰")
    form = browser.find(f"/activities/{activity.id}/attendance")
    done = browser.send(form, form.values(resident=str(elder.id)))
    assert "1 人已确认参加" in done.get_data(as_text=True)
    browser.send(form, form.values(resident=str(elder.id)))  # the same page sent again
    with app.app_context():
        assert balance(elder) == 100 and ledger.Transfer.select().count() == 1
        assert Signup.get(Signup.resident == elder.id).state == Signup.CONFIRMED


def test_the_deed_and_sign_up_forms_find_a_resident_as_the_picker_does(app, client):
    with app.app_context():
        place = make.build_place()
        make.coordinator(place.north, username="coord")
        elder = make.resident(place.north, "陈桂兰", unit_label="5号楼2单元")
        make.resident(place.north, "陈建国", unit_label="7号楼1单元")
        activity = make.activity(make.coordinator(place.north), place.north)
    browser = Browser(client)
    browser.login("coord")
    browser.get("/awards/new")
    several = browser.submit(has="note", phone="陈", category="volunteering", note="扫楼道").get_data(as_text=True)
    assert "有几位居民都符合" in several and "陈桂兰（5号楼2单元）" in several
    with app.app_context():
        assert Signup.select().count() == 0
    browser.get("/awards/new")
    browser.submit(has="note", phone="桂兰", category="volunteering", note="扫楼道")
    browser.get(f"/activities/{activity.id}")
    browser.submit(has="phone", phone="7号楼")
    with app.app_context():
        assert balance(elder) == 100
        assert [s.resident.display_name for s in Signup.select().where(Signup.activity == activity.id)] == ["陈建国"]
