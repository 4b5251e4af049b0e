"""An index on a sign-up's activity and state: every join asks whether anyone is waiting for the
activity, and without it that read goes through all of a large activity's sign-ups."""


def up(migrator, db):
    db.execute_sql("CREATE INDEX signup_activity_state ON signup (activity_id, state)")
