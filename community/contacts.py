"""How we reach a resident, and for which kind of message: the one place that answers it.

A resident has a contact per channel (their SMS number, their Telegram chat), each with its own
opt-out and verified flag. STOP on a channel ends every notice on that channel; 退订通知 ends
announcements only, on every channel, and receipts, codes and reminders still come. Notices go
by the first channel in `Contact.CHANNELS` that the resident can be reached on and that this
process can send through; when none of those is set up they go to the log (development).
"""

from ledger.db import later, prepared
from ledger.models import utcnow

from .models import Contact, Resident

SMS, TELEGRAM = Contact.SMS, Contact.TELEGRAM
LOG = "log"
#: What a message is for: SERVICE (receipts, codes, reminders, replies) or ANNOUNCEMENTS.
SERVICE, ANNOUNCEMENTS = "service", "announcements"


def address(resident, channel):
    """The resident's address on `channel` (a phone number, a Telegram chat id), or None."""
    if channel == SMS:
        return resident.phone or None
    if channel == TELEGRAM:
        return str(resident.telegram_id) if resident.telegram_id else None
    return None


_contact = prepared(lambda resident, channel: Contact.select().where(
    (Contact.resident == resident) & (Contact.channel == channel)))


def contact(resident, channel):
    """The resident's contact on `channel` (an unsaved default one when none was ever kept)."""
    found = _contact(resident.id, channel)
    return found[0] if found else Contact(resident=resident.id, channel=channel)


def of(resident):
    """The resident's contacts on the channels they have an address on, in notice order."""
    kept = _contacts([resident])
    return [kept.get((resident.id, c)) or Contact(resident=resident.id, channel=c)
            for c in Contact.CHANNELS if address(resident, c) is not None]


#: A compiled upsert for each set of values _keep is given.
_KEEPERS = {}


def _keep(resident, channel, **values):
    """Set yes-or-no values on a contact, creating it on first use (race-safe), with the
    transaction's next statement (nothing waits for its answer)."""
    key = tuple(sorted(values.items()))
    if key not in _KEEPERS:
        _KEEPERS[key] = prepared(lambda r, c, now: Contact.insert(resident=r, channel=c, **values, updated_at=now)
                                 .on_conflict(conflict_target=[Contact.resident, Contact.channel],
                                              update={**{getattr(Contact, k): v for k, v in values.items()},
                                                      Contact.updated_at: now}))
    later(_KEEPERS[key].bind(resident.id, channel, utcnow()))


def set_opted_out(resident, channel, opted_out=True):
    """STOP (or START again) on one channel."""
    _keep(resident, channel, opted_out=bool(opted_out))


def set_announcements(resident, wanted):
    """退订通知 (or 订阅通知): announcements off or on again, on every channel."""
    for channel in Contact.CHANNELS:
        _keep(resident, channel, no_announcements=not wanted)


def mark_verified(resident, channel):
    """The resident wrote to us from this address: it is theirs."""
    _keep(resident, channel, verified=True)


def forget(resident, channel):
    """The resident's address on `channel` changed: what was kept for the old one no longer holds."""
    Contact.delete().where((Contact.resident == resident.id) & (Contact.channel == channel)).execute()


def opted_out(resident, channel):
    return contact(resident, channel).opted_out


def _contacts(residents):
    kept = {}
    ids = [r.id for r in residents]
    for row in Contact.select().where(Contact.resident.in_(ids)) if ids else ():
        kept[(row.resident_id, row.channel)] = row
    return kept


def _reachable(resident, purpose, kept):
    """The channels the resident can be reached on for `purpose`, in order."""
    found = []
    for channel in Contact.CHANNELS:
        c = kept.get((resident.id, channel))
        if address(resident, channel) is None or (c is not None and c.opted_out):
            continue
        if purpose == ANNOUNCEMENTS and c is not None and c.no_announcements:
            continue
        found.append(channel)
    return found


def reach(resident, purpose=SERVICE, ready=()):
    """The channel a message for `purpose` goes by: the first reachable one among `ready` (the
    channels this process can send through), LOG when the resident is reachable only on channels
    not set up here, None when the resident cannot be reached at all."""
    return _pick(_reachable(resident, purpose, _contacts([resident])), ready)


def _pick(reachable, ready):
    return next((c for c in reachable if c in ready), LOG if reachable else None)


def audience(community, purpose=ANNOUNCEMENTS):
    """The residents of a community (not closed) that a message for `purpose` can reach."""
    residents = list(Resident.select().where((Resident.community == community) & (Resident.status != Resident.CLOSED))
                     .order_by(Resident.id))
    kept = _contacts(residents)
    return [r for r in residents if _reachable(r, purpose, kept)]


def channel_counts(residents, purpose, ready):
    """How many of `residents` each channel (or LOG) would carry a message for `purpose` to."""
    kept = _contacts(residents)
    counts = {}
    for r in residents:
        channel = _pick(_reachable(r, purpose, kept), ready)
        if channel is not None:
            counts[channel] = counts.get(channel, 0) + 1
    return counts
