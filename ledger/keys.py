"""The ledger key. Every entry is sealed with an HMAC of its hash under this key, and checkpoints
are signed with it; it never lives in the database, so someone who can write to the database can
recompute hash chains but cannot seal what they forged. Entry points hand it over through
`open_database(..., key=...)`; without one (tests, benchmarks) a fixed development key is used."""

import hashlib
import hmac

DEVELOPMENT_KEY = b"linli development ledger key"

_key = DEVELOPMENT_KEY


def use_key(key):
    """Seal and sign with `key` (bytes) from now on in this process."""
    global _key
    _key = key or DEVELOPMENT_KEY


def current_key():
    return _key


def seal(entry_hash, key=None):
    """An entry's seal: the HMAC of its hash under the ledger key."""
    return hmac.new(key or _key, entry_hash.encode(), hashlib.sha256).hexdigest()
