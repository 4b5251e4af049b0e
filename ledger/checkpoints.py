"""Checkpoints: a signed summary of the whole ledger at one moment, kept outside the database (a
file elsewhere, or on paper), so that someone who can write to the database cannot rewrite what
came before it unseen — however consistently they recompute the hash chains.

A checkpoint holds, for every account, its entry count, head hash and balance, and the number of
transfers and the highest transfer id; it is signed with a key that never lives in the database
(the caller's: LEDGER_KEY, or one derived from SECRET_KEY). `verify_against` proves that every
account's chain still reaches the same head at the same entry, and that no transfer before the
checkpoint was deleted or inserted.

A checkpoint may also be stored in the database (`store_checkpoint`): its signature cannot be
forged there, so it vouches for the entries it covers in place of their seals (entries written
before seals existed, or under an earlier key); `verify` checks it on every run.
"""

import hashlib
import hmac
import json

from .db import db
from .models import GENESIS_HASH, Account, Checkpoint, Entry, Transfer, utcnow

FORMAT = "linli-ledger-checkpoint/1"


def _sign(key, body):
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def make_checkpoint(key):
    """The ledger's state now, signed: a dict to write as JSON."""
    with db.atomic():  # one consistent view
        accounts = sorted(
            ({"code": a.code, "entries": a.version, "head": a.head_hash, "balance": a.balance}
             for a in Account.select()), key=lambda a: a["code"])
        last = Transfer.select(Transfer.id).order_by(Transfer.id.desc()).first()
        body = {"format": FORMAT, "made_at": utcnow().isoformat(timespec="seconds"), "accounts": accounts,
                "transfers": Transfer.select().count(), "last_transfer": last.id if last else 0}
    return {**body, "signature": _sign(key, body)}


def verify_against(checkpoint, key):
    """The problems found comparing the ledger with a checkpoint (empty: nothing before it changed)."""
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        return ["the file is not a Linli ledger checkpoint"]
    body = {k: v for k, v in checkpoint.items() if k != "signature"}
    if not hmac.compare_digest(str(checkpoint.get("signature", "")), _sign(key, body)):
        return ["the checkpoint's signature does not match: it was altered, or made with another key"]
    problems = []
    for kept in body["accounts"]:
        account = Account.get_or_none(Account.code == kept["code"])
        if account is None:
            problems.append(f"account {kept['code']}: in the checkpoint, gone from the ledger")
            continue
        if kept["entries"] == 0:
            head, balance = GENESIS_HASH, 0
        else:
            entry = Entry.get_or_none((Entry.account == account.id) & (Entry.seq == kept["entries"]))
            head, balance = (entry.hash, entry.balance_after) if entry else (None, None)
        if head != kept["head"] or balance != kept["balance"]:
            problems.append(f"account {kept['code']}: its first {kept['entries']} entries are not the ones "
                            "checkpointed (rewritten, deleted or inserted)")
    before = Transfer.select().where(Transfer.id <= body["last_transfer"]).count()
    if before != body["transfers"]:
        problems.append(f"ledger: {before} transfers up to id {body['last_transfer']}, "
                        f"the checkpoint counted {body['transfers']}")
    return problems


def store_checkpoint(key):
    """Make a checkpoint and keep it in the database, vouching for every entry written so far."""
    made = make_checkpoint(key)
    Checkpoint.create(body=json.dumps(made, ensure_ascii=False, separators=(",", ":")))
    return made


def stored_coverage(key):
    """Entries vouched for by the newest stored checkpoint signed with `key`: ({account code:
    entry count}, problems found checking that checkpoint against the ledger)."""
    for stored in Checkpoint.select().order_by(Checkpoint.id.desc()):
        try:
            kept = json.loads(stored.body)
            problems = verify_against(kept, key)
            if problems and problems[0].startswith(("the checkpoint's signature", "the file is not")):
                continue  # made with another key, forged or malformed: it vouches for nothing
            covered = {a["code"]: a["entries"] for a in kept["accounts"]}
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        return covered, [f"stored checkpoint {stored.id}: {p}" for p in problems]
    return {}, []
