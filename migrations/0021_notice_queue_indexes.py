"""Indexes for draining the outbox. A claim takes the oldest due notices whose person has no
earlier one waiting; with only (status, next_attempt_at) it read every pending notice for each
pending notice, so a backlog of a few thousand (an announcement, a burst of texts to the office
phone) made every claim slower than the sends it fed. A daily SMS cap counted every notice ever
sent."""


def up(migrator, db):
    db.execute_sql("DROP INDEX notice_pending")
    db.execute_sql("CREATE INDEX notice_queue ON notice (status, id)")
    db.execute_sql("CREATE INDEX notice_resident_queue ON notice (resident_id, status, id)")
    db.execute_sql("CREATE INDEX notice_address_queue ON notice (address, status, id)")
    db.execute_sql("CREATE INDEX notice_sent ON notice (channel, status, sent_at)")
