"""Recompute the ledger from its entries and name every broken invariant."""

from dataclasses import dataclass, field

from .checkpoints import stored_coverage
from .keys import current_key, seal
from .models import GENESIS_HASH, Account, Entry, Transfer
from .postings import entry_hash, transfer_digest


@dataclass
class Report:
    """What `verify` found: counts and a list of problems (empty when the ledger is sound)."""

    accounts: int = 0
    transfers: int = 0
    entries: int = 0
    problems: list = field(default_factory=list)

    @property
    def ok(self):
        return not self.problems

    def summary(self):
        state = "OK" if self.ok else f"{len(self.problems)} problem(s)"
        return f"ledger {state}: {self.accounts} accounts, {self.transfers} transfers, {self.entries} entries"


def verify(key=None, sealed=True):
    """Check hash chains, entry seals under the ledger key (or a stored checkpoint vouching for
    the entry), zero-sum transfers, cached balances and non-negative residents. `sealed=False`
    checks a database from before seals (an old backup) without them."""
    report = Report()
    problems = report.problems
    key = key or current_key()
    covered, problems[:] = stored_coverage(key) if sealed else ({}, [])
    digests = {}
    for t in Transfer.select().order_by(Transfer.id).iterator():
        report.transfers += 1
        digest = transfer_digest(t)
        if digest != t.digest:
            problems.append(f"transfer {t.id}: content does not match its digest")
        digests[t.id] = (digest, 0, 0)

    total = 0
    for account in Account.select().order_by(Account.id).iterator():
        report.accounts += 1
        total += account.balance
        vouched = covered.get(account.code, 0) if sealed else None
        report.entries += _verify_account(account, digests, problems, key, vouched)

    for transfer_id, (_, count, amount_sum) in digests.items():
        if count < 2 or amount_sum != 0:
            problems.append(
                f"transfer {transfer_id}: {count} entries summing to {amount_sum}, not a balanced transfer"
            )
    if total != 0:
        problems.append(f"ledger: account balances sum to {total}, not 0")
    orphans = Entry.select().where(Entry.transfer.not_in(Transfer.select(Transfer.id))).count()
    if orphans:
        problems.append(f"ledger: {orphans} entries belong to no transfer")
    return report


def _verify_account(account, digests, problems, key, vouched):
    """Walk one account's chain; return how many entries it has. Its first `vouched` entries are
    covered by a stored checkpoint; every later one must carry its seal (None: no seals to check)."""
    prev_hash, running, expected_seq, count = GENESIS_HASH, 0, 1, 0
    name = f"account {account.id} ({account.code})"
    columns = [f for f in Entry._meta.sorted_fields if vouched is not None or f is not Entry.seal]
    for e in Entry.select(*columns).where(Entry.account == account.id).order_by(Entry.seq).iterator():
        count += 1
        where = f"{name} entry {e.id} (seq {e.seq})"
        if e.seq != expected_seq:
            problems.append(f"{where}: expected seq {expected_seq}, an entry is missing or forged")
        running += e.amount
        if e.balance_after != running:
            problems.append(f"{where}: balance_after {e.balance_after} but entries sum to {running}")
        if running < 0 and not account.may_go_negative:
            problems.append(f"{where}: balance went negative ({running})")
        if e.prev_hash != prev_hash:
            problems.append(f"{where}: chain broken, previous hash does not match")
        digest, legs, amount_sum = digests.get(e.transfer_id, (None, 0, 0))
        digests[e.transfer_id] = (digest, legs + 1, amount_sum + e.amount)
        recomputed = entry_hash(
            e.prev_hash, e.transfer_id, digest, e.account_id, e.seq, e.amount, e.balance_after
        )
        if e.hash != recomputed:
            problems.append(f"{where}: hash does not match its content (transfer {e.transfer_id})")
        if vouched is not None and e.seq > vouched and e.seal != seal(e.hash, key):
            problems.append(f"{where}: not sealed with the ledger key (forged, or written under "
                            f"another key; transfer {e.transfer_id})")
        prev_hash, expected_seq = e.hash, e.seq + 1
    if running != account.balance:
        problems.append(f"{name}: cached balance {account.balance} but entries sum to {running}")
    if account.version != count:
        problems.append(f"{name}: version {account.version} but {count} entries")
    if account.head_hash != prev_hash:
        problems.append(f"{name}: head hash does not match its last entry")
    if account.balance < 0 and not account.may_go_negative:
        problems.append(f"{name}: negative balance {account.balance}")
    return count
