"""Confirmation into points: one award per sign-up, two-person rescue, reject, no-show, deeds, reversal."""

import datetime

import community_factory as f
import pytest

import ledger
from community import activities, awards, errors, notices, people, rules
from community.models import AuditEvent, Confirmation, PointRule, Signup
from ledger import Account, Entry, Transfer


@pytest.fixture
def deputy(place):
    return f.coordinator(place.north)


@pytest.fixture
def resident(place):
    return f.resident(place.north)


def joined(staff_member, resident, *, category="volunteering", title=None):
    """A fresh activity in the resident's community, with the resident signed up, under way."""
    activity = f.activity(staff_member, resident.community, category=category, title=title)
    signup = activities.join(resident, activity)
    f.begin(activity)
    return Signup.get_by_id(signup.id)


def balance(owner):
    return ledger.balance(owner.account_id if hasattr(owner, "account_id") else owner.issuer_id)


def awards_to(resident):
    return list(
        Transfer.select()
        .join(Entry)
        .where((Transfer.kind == Transfer.AWARD) & (Entry.account == resident.account_id))
    )


@pytest.fixture(autouse=True)
def ledger_stays_sound(place):
    yield
    report = ledger.verify()
    assert report.ok, report.problems


# --- confirming --------------------------------------------------------------------------


def test_confirming_posts_one_award_of_the_rules_points(place, boss, resident):
    signup = joined(boss, resident, title="Park clean-up")
    confirmed = awards.confirm_participation(boss, signup)
    assert confirmed.state == Signup.CONFIRMED
    assert balance(resident) == 100
    assert balance(place.north) == -100
    [award] = awards_to(resident)
    assert confirmed.transfer_id == award.id
    assert award.memo == "volunteering v1: Park clean-up"
    assert award.actor == f"staff:{boss.id}"
    assert sorted((e.account_id, e.amount) for e in award.entries) == sorted(
        [(place.north.issuer_id, -100), (resident.account_id, 100)]
    )
    assert confirmed.rule_id == rules.current_rule("volunteering").id
    [(_, params)] = f.notices_of(resident, notices.CONFIRMED)
    assert params == {
        "title": "Park clean-up", "category": "volunteering", "points": 100, "balance": 100,
        "transfer": award.id,
    }
    event = AuditEvent.get(AuditEvent.action == "signup.confirm")
    assert (event.staff_id, event.community_id, event.target) == (
        boss.id, place.north.id, f"signup:{signup.id}"
    )
    assert [line.amount for line in ledger.history(resident.account_id)] == [100]


def test_a_checked_in_sign_up_can_be_confirmed(place, boss, resident):
    starts = f.future(days=1)
    activity = f.activity(boss, place.north, starts_at=starts)
    activities.join(resident, activity)
    signup = activities.check_in(resident, activity.checkin_code, now=starts)
    f.begin(activity)
    assert awards.confirm_participation(boss, signup.id).state == Signup.CONFIRMED
    assert balance(resident) == 100


def test_confirming_twice_posts_one_award(place, boss, deputy, resident):
    signup = joined(boss, resident)
    first = awards.confirm_participation(boss, signup)
    again = awards.confirm_participation(boss, signup)
    by_another = awards.confirm_participation(deputy, signup)
    assert first.transfer_id == again.transfer_id == by_another.transfer_id
    assert len(awards_to(resident)) == 1
    assert balance(resident) == 100
    assert len(f.notices_of(resident, notices.CONFIRMED)) == 1


def test_staff_cannot_confirm_their_own_participation(place, boss, resident):
    helper = f.coordinator(place.north, resident=resident)
    signup = joined(boss, resident)
    with pytest.raises(errors.SelfConfirmation):
        awards.confirm_participation(helper, signup)
    other = f.resident(place.north)
    admin_self = f.staff("admin", resident=other)
    with pytest.raises(errors.SelfConfirmation):
        awards.confirm_participation(admin_self, joined(boss, other))
    assert balance(resident) == balance(other) == 0
    assert Confirmation.select().count() == 0
    # Somebody else may confirm it.
    assert awards.confirm_participation(boss, signup).state == Signup.CONFIRMED


def test_only_coordinators_of_the_community_confirm(place, boss, resident):
    signup = joined(boss, resident)
    for outsider in (f.clerk(place.north), f.coordinator(place.south), f.coordinator(place.other_street)):
        with pytest.raises(errors.NotPermitted):
            awards.confirm_participation(outsider, signup)
    assert balance(resident) == 0
    assert awards.confirm_participation(f.coordinator(place.street), signup).state == Signup.CONFIRMED
    assert balance(resident) == 100


def test_a_rescue_needs_two_different_staff(place, boss, deputy, resident):
    signup = joined(boss, resident, category="rescue", title="Flood")
    first = awards.confirm_participation(boss, signup)
    assert first.state == Signup.SIGNED_UP
    assert awards.awaiting_second_confirmation(first) == (1, 2)
    assert balance(resident) == 0
    with pytest.raises(errors.AlreadyConfirmedByYou):
        awards.confirm_participation(boss, signup)
    assert balance(resident) == 0
    assert awards_to(resident) == []
    assert f.notices_of(resident, notices.CONFIRMED) == []
    second = awards.confirm_participation(deputy, signup)
    assert second.state == Signup.CONFIRMED
    assert balance(resident) == 300
    assert [t.memo for t in awards_to(resident)] == ["rescue v1: Flood"]
    assert {c.staff_id for c in Confirmation.select()} == {boss.id, deputy.id}
    assert [e.staff_id for e in AuditEvent.select().where(AuditEvent.action == "signup.confirm")] == [
        boss.id, deputy.id
    ]
    # A third confirmation changes nothing.
    assert awards.confirm_participation(f.coordinator(place.north), signup).transfer_id == second.transfer_id
    assert balance(resident) == 300


# --- rule versions -----------------------------------------------------------------------


def test_an_award_keeps_the_rule_version_it_was_confirmed_under(place, boss, resident):
    admin = f.admin()
    before = awards.confirm_participation(boss, joined(boss, resident, title="Before"))
    v2 = rules.set_rule(admin, "volunteering", 250, 1)
    after = awards.confirm_participation(boss, joined(boss, resident, title="After"))
    v1 = PointRule.get((PointRule.category == "volunteering") & (PointRule.version == 1))
    assert (before.rule_id, after.rule_id) == (v1.id, v2.id)
    assert (Signup.get_by_id(before.id).rule.points, Signup.get_by_id(after.id).rule.points) == (100, 250)
    assert Transfer.get_by_id(before.transfer_id).memo == "volunteering v1: Before"
    assert Transfer.get_by_id(after.transfer_id).memo == "volunteering v2: After"
    assert balance(resident) == 350
    # Reversing the older award takes back what it gave, not today's worth.
    awards.reverse_award(boss, before, "entered twice")
    assert balance(resident) == 250
    [(_, params)] = f.notices_of(resident, notices.REVERSED)
    assert params["points"] == 100


def test_a_rule_change_between_two_rescue_confirmations_applies_to_the_award(place, boss, deputy, resident):
    signup = joined(boss, resident, category="rescue", title="Fire")
    awards.confirm_participation(boss, signup)
    v2 = rules.set_rule(f.admin(), "rescue", 500, 2)
    confirmed = awards.confirm_participation(deputy, signup)
    assert (confirmed.state, confirmed.rule_id) == (Signup.CONFIRMED, v2.id)
    assert balance(resident) == 500
    assert Transfer.get_by_id(confirmed.transfer_id).memo == "rescue v2: Fire"


# --- reject, no-show -----------------------------------------------------------------------


def test_reject_with_a_reason_tells_the_resident(place, boss, resident):
    signup = joined(boss, resident, title="Tea")
    with pytest.raises(errors.InvalidInput):
        awards.reject_participation(boss, signup, "   ")
    rejected = awards.reject_participation(boss, signup, "  was not  there ")
    assert (rejected.state, rejected.reason) == (Signup.REJECTED, "was not there")
    [(_, params)] = f.notices_of(resident, notices.REJECTED)
    assert params == {"title": "Tea", "reason": "was not there"}
    for decide in (
        lambda: awards.confirm_participation(boss, signup),
        lambda: awards.reject_participation(boss, signup, "again"),
        lambda: awards.mark_no_show(boss, signup),
    ):
        with pytest.raises(errors.NotPending):
            decide()
    assert balance(resident) == 0
    event = AuditEvent.get(AuditEvent.action == "signup.rejected")
    assert (event.staff_id, event.community_id) == (boss.id, place.north.id)


def test_no_show_awards_nothing_and_sends_nothing(place, boss, resident):
    signup = joined(boss, resident)
    marked = awards.mark_no_show(boss, signup)
    assert marked.state == Signup.NO_SHOW
    with pytest.raises(errors.NotPending):
        awards.confirm_participation(boss, signup)
    assert balance(resident) == 0
    assert f.kinds_of(resident) == []
    assert AuditEvent.select().where(AuditEvent.action == "signup.no_show").count() == 1


def test_waitlisted_or_cancelled_sign_ups_cannot_be_confirmed(place, boss):
    activity = f.activity(boss, place.north, capacity=1)
    seated, waiting = f.residents(place.north, 2)
    activities.join(seated, activity)
    waitlisted = activities.join(waiting, activity)
    with pytest.raises(errors.NotPending):
        awards.confirm_participation(boss, waitlisted)
    cancelled = activities.cancel(seated, activity)
    with pytest.raises(errors.NotPending):
        awards.confirm_participation(boss, cancelled)
    promoted = Signup.get_by_id(waitlisted.id)
    assert promoted.state == Signup.SIGNED_UP
    with pytest.raises(errors.NotStartedYet):  # nobody has taken part yet
        awards.confirm_participation(boss, promoted)
    f.begin(activity)
    assert awards.confirm_participation(boss, promoted).state == Signup.CONFIRMED
    assert (balance(seated), balance(waiting)) == (0, 100)
    assert Confirmation.select().count() == 1


# --- ad-hoc deeds --------------------------------------------------------------------------


def test_a_reported_deed_is_confirmed_like_a_sign_up(place, boss, resident):
    deed = awards.report_deed(boss, resident, "mediation", "Settled a  noise dispute")
    assert (deed.activity_id, deed.state, deed.note, deed.created_by_id) == (
        None, Signup.SIGNED_UP, "Settled a noise dispute", boss.id
    )
    assert [s.id for s in awards.pending_for([place.north])] == [deed.id]
    assert awards.pending_for([place.south]) == []
    confirmed = awards.confirm_participation(boss, deed)
    assert confirmed.state == Signup.CONFIRMED
    assert balance(resident) == 150
    assert Transfer.get_by_id(confirmed.transfer_id).memo == "mediation v1: Settled a noise dispute"
    assert awards.pending_for([place.north]) == []
    assert [(a, c) for a, _, c, _ in f.audit_actions(boss)] == [
        ("deed.report", place.north.id), ("signup.confirm", place.north.id)
    ]


def test_pending_lists_deeds_and_sign_ups_of_started_activities(place, boss, resident):
    starts = f.future(days=1)
    activity = f.activity(boss, place.north, starts_at=starts)
    signup = activities.join(resident, activity)
    deed = awards.report_deed(boss, resident, "volunteering", "Fixed the gate")
    assert [s.id for s in awards.pending_for([place.north])] == [deed.id]
    after_start = starts + datetime.timedelta(hours=1)
    assert [s.id for s in awards.pending_for([place.north], now=after_start)] == [signup.id, deed.id]
    awards.mark_no_show(boss, signup)
    assert [s.id for s in awards.pending_for([place.north], now=after_start)] == [deed.id]
    assert awards.pending_for([place.south], now=after_start) == []


def test_a_reported_rescue_needs_two_confirmations(place, boss, deputy, resident):
    deed = awards.report_deed(boss, resident, "rescue", "Pulled a child from the river")
    awards.confirm_participation(boss, deed)
    assert balance(resident) == 0
    awards.confirm_participation(deputy, deed)
    assert balance(resident) == 300


def test_report_deed_refuses_what_it_should(place, boss, resident):
    with pytest.raises(errors.NotPermitted):
        awards.report_deed(f.clerk(place.north), resident, "rescue", "x")
    with pytest.raises(errors.NotPermitted):
        awards.report_deed(f.coordinator(place.south), resident, "rescue", "x")
    with pytest.raises(errors.UnknownCategory):
        awards.report_deed(boss, resident, "juggling", "x")
    with pytest.raises(errors.InvalidInput):
        awards.report_deed(boss, resident, "rescue", "  ")
    closed = people.close_resident(boss, f.resident(place.north))
    with pytest.raises(errors.ResidentClosed):
        awards.report_deed(boss, closed, "rescue", "x")
    assert Signup.select().count() == 0


# --- reversal ----------------------------------------------------------------------------


def test_reversing_an_award_takes_the_points_back(place, boss, resident):
    signup = awards.confirm_participation(boss, joined(boss, resident))
    with pytest.raises(errors.InvalidInput):
        awards.reverse_award(boss, signup, "")
    reversed_ = awards.reverse_award(boss, signup, "  duplicate entry ")
    assert (reversed_.state, reversed_.reason) == (Signup.REVERSED, "duplicate entry")
    assert balance(resident) == 0
    assert balance(place.north) == 0
    reversal = Transfer.get(Transfer.kind == Transfer.REVERSAL)
    assert (reversal.reverses_id, reversal.memo, reversal.actor) == (
        signup.transfer_id, "duplicate entry", f"staff:{boss.id}"
    )
    [(_, params)] = f.notices_of(resident, notices.REVERSED)
    assert params == {"reason": "duplicate entry", "points": 100, "balance": 0, "title": signup.activity.title}
    event = AuditEvent.get(AuditEvent.action == "award.reverse")
    assert (event.staff_id, event.community_id) == (boss.id, place.north.id)
    with pytest.raises(errors.NotConfirmed):
        awards.reverse_award(boss, signup, "again")
    with pytest.raises(errors.NotPending):
        awards.confirm_participation(boss, signup)
    assert Transfer.select().where(Transfer.kind == Transfer.REVERSAL).count() == 1
    assert len(f.notices_of(resident, notices.REVERSED)) == 1


def test_only_confirmed_awards_can_be_reversed(place, boss, resident):
    signup = joined(boss, resident)
    with pytest.raises(errors.NotConfirmed):
        awards.reverse_award(boss, signup, "nothing to take back")
    awards.confirm_participation(boss, signup)
    with pytest.raises(errors.NotPermitted):
        awards.reverse_award(f.clerk(place.north), signup, "no")
    assert balance(resident) == 100


def test_a_reversal_that_would_overdraw_changes_nothing(place, boss, resident):
    signup = awards.confirm_participation(boss, joined(boss, resident))
    shop = ledger.open_account("shop:tea", Account.SHOP, "Tea shop")
    ledger.transfer(
        resident.account_id, shop, 60, kind=Transfer.REDEEM, actor="resident", idempotency_key="tea"
    )
    with pytest.raises(ledger.InsufficientPoints):
        awards.reverse_award(boss, signup, "mistake")
    assert Signup.get_by_id(signup.id).state == Signup.CONFIRMED
    assert balance(resident) == 40
    assert f.notices_of(resident, notices.REVERSED) == []
    assert AuditEvent.select().where(AuditEvent.action == "award.reverse").count() == 0


def test_a_roster_is_decided_in_one_call_and_a_reason_beats_a_tick(place, boss):
    activity = f.activity(boss, place.north)
    first, second, third, fourth = (activities.join(f.resident(place.north), activity) for _ in range(4))
    closed = f.resident(place.north)
    fifth = activities.join(closed, activity)
    people.close_resident(boss, closed)
    f.begin(activity)
    ticked = {first.id, second.id, fifth.id}
    confirmed, rejected, refused = awards.decide_roster(boss, activity, ticked, {second.id: "没来", third.id: " "})
    assert (confirmed, rejected) == (1, 1)
    assert [(s.id, type(e).__name__) for s, e in refused] == [(fifth.id, "ResidentClosed")]
    states = {s.id: Signup.get_by_id(s.id).state for s in (first, second, third, fourth, fifth)}
    assert states == {first.id: Signup.CONFIRMED, second.id: Signup.REJECTED, third.id: Signup.SIGNED_UP,
                      fourth.id: Signup.SIGNED_UP, fifth.id: Signup.SIGNED_UP}
