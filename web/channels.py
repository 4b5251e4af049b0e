"""Staff pages about the resident channels: the SMS simulator and community announcements."""

import uuid
from decimal import Decimal

from flask import Blueprint, current_app, flash, redirect, render_template, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from botapp import outbox, sms
from botapp.segments import segments
from community import Community, Staff
from community.notices import announce, announcement_audience
from community.people import find_resident, mask_phone, normalise_phone

from .auth import current_staff, roles_required
from .forms import AnnounceForm, SimulatorForm
from .util import community_choices, region

bp = Blueprint("channels", __name__)
COORDINATOR = Staff.COORDINATOR
TRANSCRIPT = 30


@bp.route("/simulator", methods=["GET", "POST"])
@roles_required(COORDINATOR)
def simulator():
    """Talk to the dialogue as an SMS resident: the exact replies and segment counts a phone gets."""
    form = SimulatorForm()
    transcript = session.get("simulator", [])
    if form.validate_on_submit():
        phone = normalise_phone(form.phone.data, region())
        reply = sms.receive(current_app.extensions["linli.dialogue"], f"sim-{uuid.uuid4().hex}", phone,
                            form.message.data)
        transcript = (transcript + [{"phone": mask_phone(phone), "sent": form.message.data,
                                     "reply": reply, "segments": segments(reply) if reply else 0}])[-TRANSCRIPT:]
        session["simulator"] = transcript
        session["simulator_phone"] = form.phone.data
        return redirect(url_for(".simulator"))
    form.phone.data = form.phone.data or session.get("simulator_phone", "")
    resident = find_resident(phone=form.phone.data, region=region()) if form.phone.data else None
    notices = []
    if resident is not None:
        dialogue = current_app.extensions["linli.dialogue"]
        notices = [(n, outbox.render(n, resident, dialogue, "sms")) for n in outbox.recent_notices(resident)]
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
        audience = announcement_audience(community)
        by_sms = sum(1 for r in audience if not (r.telegram_id and current_app.config.get("TELEGRAM_BOT_TOKEN")))
        per_message = segments(form.text.data)
        price = Decimal(current_app.config["SMS_PRICE_PER_SEGMENT"])
        preview = {"recipients": len(audience), "by_sms": by_sms, "segments": per_message,
                   "total_segments": per_message * by_sms, "cost": price * per_message * by_sms}
        if form.send.data:
            count = announce(current_staff(), community, form.text.data)
            flash(_("Announcement queued for %(count)d residents.", count=count), "success")
            return redirect(url_for(".announcement"))
    return render_template("channels/announce.html", form=form, preview=preview)
