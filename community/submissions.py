"""One effect per form: every form that creates something carries a one-time key, and the key is
written in the same transaction as what the form creates. A double click, a resubmitted page or a
retry after a dropped connection finds the key taken and gets the first outcome back instead.
"""

import re
from dataclasses import dataclass

from peewee import IntegrityError

from ledger import db

from .errors import FormExpired, NotPermitted
from .models import FormSubmission

KEY = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Outcome:
    """What a form submission did: `result` is the id (or count) the first submission made;
    `made` is what this call created, None when the form had been carried out before."""

    result: int
    made: object = None

    @property
    def repeated(self):
        return self.made is None


def submit_once(staff, key, action, create):
    """Run `create()` once for this form key, in one transaction with the key.

    `create` returns the model it made (or a count). A second call with the same key changes
    nothing and returns the first outcome, also while the first is still being carried out.
    """
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise FormExpired()
    with db.atomic():
        try:
            with db.atomic():
                row = FormSubmission.create(key=key, staff=staff, action=action)
        except IntegrityError:
            row = None
        if row is None:
            first = FormSubmission.get(FormSubmission.key == key)
            if first.staff_id != staff.id or first.action != action:
                raise NotPermitted()
            return Outcome(first.result)
        made = create()
        result = made if isinstance(made, int) else made.id
        FormSubmission.update(result=result).where(FormSubmission.id == row.id).execute()
    return Outcome(result, made)
