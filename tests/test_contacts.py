"""Contacts: one service says how a resident is reached, per channel and kind of message; the
migration that made them carries over who said STOP, on SQLite and PostgreSQL."""

import community_factory as make
from upgrades import app_before, upgrade

import ledger
from community import Contact, Resident, contacts
from community.notices import ANNOUNCEMENT, announce, purpose, queue_notice
from community.people import find_sender

SMS, TELEGRAM = contacts.SMS, contacts.TELEGRAM


def test_a_database_from_before_contacts_keeps_every_stop(empty_db_url, tmp_path):
    app = app_before("0016", empty_db_url, tmp_path)
    with ledger.db.connection_context():
        place = make.build_place()
        rows = [  # name, phone, telegram, staff recorded STOP, the number said STOP, the number wrote
            ("王阿姨", "+8613800138001", None, True, False, False),
            ("李伯", "+8613800138002", None, False, True, True),
            ("陈姐", "+8613800138003", 4242, False, False, True),
            ("小赵", None, 4343, False, False, False),
        ]
        for n, (name, phone, telegram, staff_stop, said_stop, wrote) in enumerate(rows):
            account = ledger.open_account(f"resident:old{n}", "resident").id
            ledger.db.execute_sql(
                "INSERT INTO resident (community_id, display_name, phone, telegram_id, language, sms_opt_out, "
                "status, grid_label, unit_label, account_id, created_at) "
                "VALUES (%s, %s, %s, %s, 'zh_Hans', %s, 'active', '', '', %s, '2026-01-01 00:00:00')"
                .replace("%s", "?" if ledger.is_sqlite() else "%s"),
                (place.north.id, name, phone, telegram, staff_stop, account))
            if wrote or said_stop:
                ledger.db.execute_sql(
                    "INSERT INTO conversation (channel, address, state, data, language, opted_out, updated_at) "
                    "VALUES ('sms', %s, '', '{}', 'zh_Hans', %s, '2026-01-01 00:00:00')"
                    .replace("%s", "?" if ledger.is_sqlite() else "%s"), (phone, said_stop))
    assert "0016_contacts" in upgrade(app)
    with ledger.db.connection_context():
        assert "sms_opt_out" not in [c.name for c in ledger.db.get_columns("resident")]
        kept = {(c.resident.display_name, c.channel): (c.opted_out, c.verified) for c in Contact.select()}
        assert kept == {("王阿姨", SMS): (True, False), ("李伯", SMS): (True, True), ("陈姐", SMS): (False, True),
                        ("陈姐", TELEGRAM): (False, True), ("小赵", TELEGRAM): (False, True)}
        by_name = {r.display_name: r for r in Resident.select()}
        ready = [TELEGRAM, SMS]
        assert [contacts.reach(by_name[n], contacts.SERVICE, ready) for n in ("王阿姨", "李伯", "陈姐", "小赵")] == [
            None, None, TELEGRAM, TELEGRAM]
        assert contacts.reach(by_name["陈姐"], contacts.SERVICE, [SMS]) == SMS
        assert contacts.reach(by_name["小赵"], contacts.SERVICE, [SMS]) == contacts.LOG  # Telegram not set up here
    assert app.test_cli_runner().invoke(args=["ledger", "verify"]).exit_code == 0


def test_stop_quiet_and_staff_each_change_one_thing(place, boss):
    both = make.resident(place.north, "陈姐", phone_number="+8613800138003", telegram_id=4242)
    sms_only = make.resident(place.north, "王阿姨", phone_number="+8613800138001")
    ready = [TELEGRAM, SMS]
    assert [c.channel for c in contacts.of(both)] == [TELEGRAM, SMS]
    contacts.set_announcements(sms_only, False)
    assert contacts.reach(sms_only, contacts.SERVICE, ready) == SMS
    assert [r.display_name for r in contacts.audience(place.north)] == ["陈姐"]
    assert announce(boss, place.north, "周六大扫除") == 1
    contacts.set_opted_out(both, TELEGRAM)
    assert contacts.reach(both, contacts.ANNOUNCEMENTS, ready) == SMS
    contacts.set_opted_out(both, SMS)
    assert contacts.reach(both, contacts.SERVICE, ready) is None and contacts.audience(place.north) == []
    notice = queue_notice(ANNOUNCEMENT, sms_only, text="x")
    assert purpose(notice) == contacts.ANNOUNCEMENTS


def test_a_new_number_starts_with_its_own_sms_contact(place, boss):
    from community.people import update_resident

    resident = make.resident(place.north, "王阿姨", phone_number="+8613800138001")
    contacts.set_opted_out(resident, SMS)
    contacts.mark_verified(resident, SMS)
    update_resident(boss, resident, phone="13900139001")
    resident = Resident.get_by_id(resident.id)
    assert not contacts.opted_out(resident, SMS) and not contacts.contact(resident, SMS).verified


def test_a_sender_is_read_with_their_contact_on_that_channel(place):
    both = make.resident(place.north, "陈姐", phone_number="+8613800138003", telegram_id=4242)
    make.resident(place.north, "王阿姨", phone_number="+8613800138001")
    resident, contact = find_sender(phone="138 0013 8003")
    assert resident.id == both.id and contact.id is None
    assert (contact.channel, contact.opted_out, contact.verified) == (SMS, False, False)
    contacts.set_opted_out(both, SMS)
    contacts.mark_verified(both, TELEGRAM)
    resident, contact = find_sender(phone="+8613800138003")
    assert contact.channel == SMS and contact.opted_out and not contact.verified
    resident, contact = find_sender(telegram_id=4242)
    assert contact.channel == TELEGRAM and contact.verified and not contact.opted_out
    assert find_sender(phone="+8613800138001")[1].opted_out is False
    assert find_sender(phone="+8613999999999") == (None, None) == find_sender(phone="不是号码")
