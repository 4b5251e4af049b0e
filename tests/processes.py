"""Child processes for the tests that need real ones: races, the kill -9 storm, a writer beside a
backup.

Children start from a fork server: an interpreter started afresh for it (never a fork of pytest's
process, so no connection, lock or thread of the test is inherited) that has imported the project
and its libraries once. Each child is a fork of that server, which starts in milliseconds instead
of the second or more a spawned interpreter spends importing everything again; it opens the
database itself, so nothing is shared but the database and the arguments it is handed.

The functions children run must live at the top level of an importable module (a test module will
do: the fork server gets pytest's sys.path, with this tests directory and the project root). The
server's environment is the one it started with: pass anything else a child needs as arguments.
"""

import multiprocessing

#: Imported once in the fork server; a child imports only what is missing (its test module).
PRELOAD = [
    "ledger", "community", "community.awards", "community.activities", "catalog.cards", "catalog.checkout",
    "catalog.goods", "botapp.dialogue", "botapp.outbox", "botapp.sms", "botapp.telegram_bot", "botapp.worker",
    "web", "psycopg", "pytest", "hypothesis", "community_factory", "fake_telegram", "webforms", "killing", "racing",
]

CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload(PRELOAD)
