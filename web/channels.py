"""Staff pages about the resident channels: the SMS simulator and community announcements."""

import uuid
from decimal import Decimal

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from botapp import outbox, sms
from botapp.dialogue import parse
from botapp.models import SimulatorLine
from botapp.segments import MAX_SEGMENTS, segments
from community import Community, Staff, contacts
from community.audit import record
from community.notices import announce
from community.people import can_act, find_resident, mask_phone, normalise_phone
from ledger import db

from .auth import current_staff, roles_required
from .forms import AnnounceForm, SimulatorForm
from .util import community_choices, once, ready_channels, region

bp = Blueprint("channels", __name__)
COORDINATOR = Staff.COORDINATOR
TRANSCRIPT = 30


#: What the simulator will not do: hand out a resident's counter or Telegram link codes.
NOT_SIMULATED = ("code", "redeem", "telegram")


class _OutOfReach(Exception):
    """The simulated message would have made a resident outside the staff member's communities."""


@bp.route("/simulator", methods=["GET", "POST"])
@roles_required(COORDINATOR)
def simulator():
    """Talk to the dialogue as an SMS resident: the exact replies and segment counts a phone gets.

    Only for new numbers and residents of the staff member's own communities; it never hands
    out a code that spends points or links an account.
    """
    form = SimulatorForm()
    me = current_staff()
    resident = None
    if form.validate_on_submit():
        phone = normalise_phone(form.phone.data, region())
        resident = find_resident(phone=phone, region=region())
        if resident is not None and not can_act(me, resident.community, COORDINATOR):
            abort(403)
        if parse(form.message.data)[0] in NOT_SIMULATED:
            flash(_("The simulator does not hand out counter or link codes."), "error")
        else:
            try:
                with db.atomic():
                    reply = sms.receive(current_app.extensions["linli.dialogue"], f"sim-{uuid.uuid4().hex}", phone,
                                        form.message.data)
                    resident = find_resident(phone=phone, region=region())
                    if resident is not None and not can_act(me, resident.community, COORDINATOR):
                        raise _OutOfReach()  # a simulated registration into another community: undone
                    SimulatorLine.create(staff=me.id, phone=mask_phone(phone), sent=form.message.data,
                                         reply=reply or "", segments=segments(reply) if reply else 0)
                    record(me, "simulator.message", f"resident:{resident.id}" if resident else "",
                           {"phone": mask_phone(phone)}, community=resident.community if resident else None)
            except _OutOfReach:
                resident = None
                flash(_("Residents of other communities cannot be registered from here."), "error")
    transcript = list(SimulatorLine.select().where(SimulatorLine.staff == me.id)
                      .order_by(SimulatorLine.id.desc()).limit(TRANSCRIPT))[::-1]
    notices = []
    if resident is not None:
        dialogue = current_app.extensions["linli.dialogue"]
        notices = [(n, outbox.render(n, resident, dialogue, "sms", redact=True))
                   for n in outbox.recent_notices(resident)]
    return render_template("channels/simulator.html", form=form, transcript=transcript, notices=notices,
                           segments=segments)


@bp.route("/announce", methods=["GET", "POST"])
@roles_required(COORDINATOR)
def announcement():
    """Announce something to a community's residents, with the SMS cost shown before sending."""
    form = AnnounceForm()
    form.community.choices = community_choices(str(get_locale()))
    preview = None
    if form.validate_on_submit():
        community = Community.get_by_id(form.community.data)
        audience = contacts.audience(community, contacts.ANNOUNCEMENTS)
        by_sms = contacts.channel_counts(audience, contacts.ANNOUNCEMENTS, ready_channels()).get(contacts.SMS, 0)
        per_message = segments(form.text.data)
        price = Decimal(current_app.config["SMS_PRICE_PER_SEGMENT"])
        preview = {"recipients": len(audience), "by_sms": by_sms, "segments": per_message,
                   "total_segments": per_message * by_sms, "cost": price * per_message * by_sms}
        if per_message > MAX_SEGMENTS:
            flash(_("An announcement must fit in %(n)d SMS segments: shorten it.", n=MAX_SEGMENTS), "error")
        elif form.send.data:
            done = once("announce", lambda: announce(current_staff(), community, form.text.data))
            if not done.repeated:
                flash(_("Announcement queued for %(count)d residents.", count=done.result), "success")
            return redirect(url_for(".announcement"))
    return render_template("channels/announce.html", form=form, preview=preview)
