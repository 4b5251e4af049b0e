"""The floor for the web figures: bare Flask routes under the same gunicorn settings.

`gunicorn -w 2 'bench.bare_app:create_app()'`. The SMS route answers a fixed TwiML string (the
Android one, 204 No Content); the
counter routes answer a cart page, a redirect and a receipt page of about the same shape as the
real ones, with no database, no session, no templates and no signature or CSRF checks.
"""

import itertools

from flask import Flask, redirect

TWIML = ('<?xml version="1.0" encoding="UTF-8"?><Response><Message>积分余额：12.5 分。'
         '回复 HIST 查看明细。</Message></Response>')
CART = ('<!doctype html><title>Counter</title><h1>居民</h1><p id="balance">10</p>'
        '<form method="post" action="/counter/checkout"><input type="hidden" name="checkout_key" value="{key}">'
        '<input type="number" name="qty-1" value="0"><button>Confirm</button></form>')
RECEIPT = '<!doctype html><title>Receipt</title><h1>Done</h1><p><strong id="balance">9.9</strong></p>'


def create_app():
    """Build the bare app."""
    app = Flask(__name__)
    keys = itertools.count(1)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.post("/sms/inbound")
    def inbound():
        return TWIML, 200, {"Content-Type": "application/xml; charset=utf-8"}

    @app.post("/sms/android")
    def android():
        return "", 204

    @app.get("/counter/")
    def counter():
        return "<!doctype html><title>Counter</title><form method=post action=/counter/scan></form>"

    @app.post("/counter/scan")
    def scan():
        return CART.format(key=next(keys))

    @app.post("/counter/checkout")
    def checkout():
        return redirect("/counter/receipts/1")

    @app.get("/counter/receipts/<int:redemption_id>")
    def receipt(redemption_id):
        return RECEIPT

    return app
