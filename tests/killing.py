"""The suite's kill -9 harness: workers post operations and journal what they acknowledged, while
a killer sends SIGKILL to them at random moments and starts them again.

A worker is a client of Linli: a coordinator reporting and confirming community work, a clerk
checking a resident out at the counter. Each operation has its own key. The worker writes the
operation to its journal before it starts, and its key once it has committed (flush and fsync):
from then on the operation is acknowledged. A worker started again after a kill finds in its
journal the operation it was doing and, as a real client would, usually tries it again under the
same key; sometimes it gives up on it instead. Either way it goes on with new keys.

Only the database and the journal files are shared: no queues or locks, which a killed process
could leave held. This module imports nothing heavier than the domain packages, since every
process the killer starts imports it again.
"""

import itertools
import json
import os
import random
import signal
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from processes import CONTEXT

import ledger
from catalog import codes
from catalog.checkout import checkout, find_checkout
from catalog.errors import OutOfStock, OverLimit
from community import awards
from community.errors import AlreadyConfirmedByYou
from community.models import Activity, Resident, Signup, Staff

STOP = "stop"
#: How often a restarted worker tries again the operation it was killed in (else it gives up).
RETRY = 0.8
#: Answers that end an operation without any effect: the client is told no.
REFUSALS = (ledger.InsufficientPoints, OutOfStock, OverLimit)
DEED, RESCUE, JOIN, CHECKOUT = "deed", "rescue", "join", "checkout"


@dataclass(frozen=True)
class Cast:
    """Who and what the workers act on, as ids: each process loads the rows afresh."""

    boss: int
    deputy: int
    clerk: int
    residents: tuple  # awards go to any of them
    shoppers: tuple  # per worker: the residents only that worker issues counter codes for
    activities: tuple  # per worker: the activities only that worker signs residents up for
    goods: tuple
    secret: str
    seed: int


# --- the journal ---------------------------------------------------------------------------


def read_journal(path):
    """The journal's entries, oldest first; a line torn by a kill is no entry."""
    entries = []
    if not Path(path).exists():
        return entries
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


def unfinished(entries):
    """The operation begun last, if nothing (an answer, giving up) has ended it."""
    current = None
    for entry in entries:
        if "begin" in entry:
            current = entry["begin"]
        elif current is not None and {"ack", "refused", "abandon"} & entry.keys():
            current = None
    return current


class Journal:
    """A worker's append-only journal: one JSON object a line, each on disk before it returns."""

    def __init__(self, path):
        self.path = Path(path)
        self.entries = read_journal(self.path)
        self.file = open(self.path, "a+b")  # noqa: SIM115  (open for the worker's whole life)
        if self.file.seek(0, os.SEEK_END):
            self.file.seek(-1, os.SEEK_END)
            if self.file.read(1) != b"\n":  # a kill tore the last line: end it
                self._append(b"\n")

    def _append(self, data):
        self.file.write(data)
        self.file.flush()
        os.fsync(self.file.fileno())

    def write(self, **entry):
        self._append(json.dumps(entry, ensure_ascii=False).encode() + b"\n")


# --- a worker ------------------------------------------------------------------------------


class Client:
    """One incarnation of a worker: picks operations, performs them, journals the answers."""

    def __init__(self, cast, worker, incarnation, journal):
        self.cast, self.worker, self.journal = cast, worker, journal
        self.rng = random.Random(f"{cast.seed}/{worker}/{incarnation}")
        self.keys = (f"w{worker}.{incarnation}.{n}" for n in itertools.count(1))
        begun = [e["begin"]["key"] for e in journal.entries if "begin" in e]
        self.free_pairs = [
            (activity, resident)
            for activity in cast.activities[worker]
            for resident in cast.residents
            if f"join:{activity}:{resident}" not in begun
        ]
        self.boss, self.deputy = Staff.get_by_id(cast.boss), Staff.get_by_id(cast.deputy)
        self.clerk = Staff.get_by_id(cast.clerk)

    def resume(self):
        """Try again (or give up on) the operation a kill interrupted."""
        operation = unfinished(self.journal.entries)
        if operation is None:
            return
        found = self.found(operation)
        if self.rng.random() < RETRY:
            self.journal.write(retry=operation["key"], found=found)
            self.perform(operation, begun=True)
        else:
            self.journal.write(abandon=operation["key"], found=found)

    def found(self, operation):
        """What the database holds of an operation: done, partly done (its first step), nothing."""
        if operation["kind"] == CHECKOUT:
            return "done" if find_checkout(operation["key"]) is not None else "nothing"
        signup = signup_of(operation)
        if signup is None:
            return "nothing"
        return "done" if signup.state == Signup.CONFIRMED else "partial"

    def next_operation(self):
        """A new operation: mostly reported work and checkouts, some rescues and sign-ups."""
        roll, key, rng = self.rng.random(), next(self.keys), self.rng
        if roll < 0.4:
            category = rng.choice(["volunteering", "volunteering", "mediation"])
            return {"kind": DEED, "key": key, "resident": rng.choice(self.cast.residents), "category": category}
        if roll < 0.5:
            return {"kind": RESCUE, "key": key, "resident": rng.choice(self.cast.residents), "category": "rescue"}
        if roll < 0.6 and self.free_pairs:
            activity, resident = self.free_pairs.pop(rng.randrange(len(self.free_pairs)))
            return {"kind": JOIN, "key": f"join:{activity}:{resident}", "activity": activity, "resident": resident}
        # Mostly the plain first goods; now and then the limited or scarce ones, which run out.
        picked = rng.sample(self.cast.goods, rng.randint(1, 2)) if rng.random() < 0.3 else self.cast.goods[:1]
        cart = [[goods, rng.randint(1, 2)] for goods in picked]
        return {"kind": CHECKOUT, "key": key, "resident": rng.choice(self.cast.shoppers[self.worker]), "cart": cart}

    def perform(self, operation, begun=False):
        """Journal the operation, do it, journal the answer: acknowledged, or refused (no effect)."""
        if not begun:
            self.journal.write(begin=operation)
        try:
            getattr(self, operation["kind"])(operation)
        except REFUSALS as exc:
            self.journal.write(refused=operation["key"], why=type(exc).__name__)
        else:
            self.journal.write(ack=operation["key"])

    def confirm(self, staff, signup):
        """Confirm; a confirmation this coordinator gave before the kill counts as given."""
        try:
            return awards.confirm_participation(staff, signup)
        except AlreadyConfirmedByYou:
            return Signup.get_by_id(signup.id)

    def award(self, signup, operation):
        """Confirm as the boss, and as the deputy too where two confirmations are needed."""
        confirmed = self.confirm(self.boss, signup)
        if operation["kind"] == RESCUE:
            confirmed = self.confirm(self.deputy, signup)
        if confirmed.state != Signup.CONFIRMED:
            raise RuntimeError(f"{operation['key']}: confirmed, yet the sign-up is {confirmed.state}")

    def deed(self, operation):
        """Report work done (once: a retry finds the report by its note), then confirm it."""
        signup = signup_of(operation)
        if signup is None:
            resident = Resident.get_by_id(operation["resident"])
            signup = awards.report_deed(self.boss, resident, operation["category"], operation["key"])
        self.award(signup, operation)

    rescue = deed

    def join(self, operation):
        """A resident who came to an activity under way: their attendance is recorded (a walk-in;
        recording it twice changes nothing) and confirmed."""
        resident = Resident.get_by_id(operation["resident"])
        signup = signup_of(operation)
        if signup is None:
            came, refused = awards.record_attendance(self.boss, Activity.get_by_id(operation["activity"]), [resident])
            if refused:
                raise refused[0][1]
            signup = came[0]
        self.award(signup, operation)

    def checkout(self, operation):
        """The counter: a resubmitted checkout key shows its receipt, else scan a fresh code and pay."""
        if find_checkout(operation["key"]) is not None:
            return
        secret = self.cast.secret
        text = codes.issue_qr_code(Resident.get_by_id(operation["resident"]), secret)
        row = codes.find_qr_code(text, secret)
        cart = [(goods, quantity) for goods, quantity in operation["cart"]]
        checkout(self.clerk, row, cart, checkout_key=operation["key"])


def signup_of(operation):
    """The sign-up an award operation made, if it got that far."""
    if operation["kind"] == JOIN:
        return Signup.get_or_none(
            (Signup.activity == operation["activity"]) & (Signup.resident == operation["resident"])
        )
    return Signup.get_or_none(Signup.activity.is_null() & (Signup.note == operation["key"]))


def work(url, folder, worker, incarnation, cast):
    """A worker process: resume the interrupted operation, then post new ones until told to stop."""
    folder = Path(folder)
    journal = Journal(folder / f"worker-{worker}.jsonl")
    try:
        database = ledger.open_database(url)
        database.connect()
        client = Client(cast, worker, incarnation, journal)
        journal.write(start=incarnation)
        (folder / f"ready-{worker}-{incarnation}").touch()
        client.resume()
        while not (folder / STOP).exists():
            client.perform(client.next_operation())
        database.close()
    except BaseException:
        journal.write(error=traceback.format_exc())
        raise


# --- the killer ----------------------------------------------------------------------------


@dataclass
class Storm:
    """What a storm did: its kills, and each worker's journal."""

    folder: Path
    workers: int
    kills: int
    seconds: float

    def journals(self):
        return {w: read_journal(self.folder / f"worker-{w}.jsonl") for w in range(self.workers)}

    def entries(self):
        return [entry for journal in self.journals().values() for entry in journal]

    def operations(self):
        """Every operation begun, by key."""
        return {e["begin"]["key"]: e["begin"] for e in self.entries() if "begin" in e}

    def keys(self, event):
        """The keys with this answer (ack, refused, abandon, retry), in journal order."""
        return [e[event] for e in self.entries() if event in e]

    def tally(self):
        """Counts for the report: operations, answers, and what each restart found."""
        counts = Counter(kind for e in self.entries() for kind in e if kind in (
            "begin", "ack", "refused", "abandon", "retry", "start"))
        counts.update(f"{event} found {e['found']}" for e in self.entries()
                      for event in ("retry", "abandon") if event in e)
        counts.update(f"refused {e['why']}" for e in self.entries() if "refused" in e)
        acked = set(self.keys("ack"))
        counts.update(f"ack {op['kind']}" for key, op in self.operations().items() if key in acked)
        return dict(sorted(counts.items()))

    def summary(self):
        return f"{self.kills} kills in {self.seconds:.1f}s, {self.workers} workers: {self.tally()}"


def _start(url, folder, worker, incarnation, cast):
    process = CONTEXT.Process(target=work, args=(url, str(folder), worker, incarnation, cast), daemon=True)
    process.start()
    return process


def _last_error(folder, worker):
    errors = [e["error"] for e in read_journal(Path(folder) / f"worker-{worker}.jsonl") if "error" in e]
    return errors[-1] if errors else "no error in its journal"


def storm(url, folder, cast, *, workers, kills, lifetime=1.2, timeout=600):
    """Run `workers` workers and SIGKILL them `kills` times, starting each again at once; then
    let them finish their operations and stop. Return the Storm.

    Each incarnation is killed at a random moment of its working life, which lasts up to
    `lifetime` seconds from the moment it is connected. A worker that exits by itself (an error)
    fails the storm with the traceback from its journal.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(cast.seed)
    started = time.monotonic()
    incarnations = dict.fromkeys(range(workers), 0)
    processes = {w: _start(url, folder, w, 0, cast) for w in range(workers)}
    deaths, done = {}, 0
    try:
        while done < kills:
            elapsed = time.monotonic() - started
            assert elapsed < timeout, f"only {done} of {kills} kills in {elapsed:.0f}s"
            time.sleep(0.01)
            for w, process in processes.items():
                assert process.exitcode is None, (
                    f"worker {w} exited by itself ({process.exitcode}): {_last_error(folder, w)}"
                )
                if w not in deaths:
                    if (folder / f"ready-{w}-{incarnations[w]}").exists():
                        deaths[w] = time.monotonic() + rng.uniform(0, lifetime)
                    continue
                if time.monotonic() < deaths[w] or done == kills:
                    continue
                process.kill()
                process.join()
                assert process.exitcode == -signal.SIGKILL
                done += 1
                del deaths[w]
                incarnations[w] += 1
                processes[w] = _start(url, folder, w, incarnations[w], cast)
        (folder / STOP).touch()
        for w, process in processes.items():
            process.join(timeout=120)
            assert process.exitcode == 0, f"worker {w} did not stop cleanly: {_last_error(folder, w)}"
    finally:
        for process in processes.values():
            if process.is_alive():
                process.kill()
                process.join()
    return Storm(folder, workers, done, time.monotonic() - started)
