"""Twilio from the tests' side: webhook requests signed as Twilio signs them, and the REST API's
HTTP layer answering like the Messages API while keeping each request the app sends."""

import json
import logging

from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator

#: The app's public address and the account's auth token, as the signed webhooks' apps configure them.
BASE = "https://linli.example"
TOKEN = "test-auth-token"
#: The Twilio number notices are sent from.
FROM = "+15005550006"


def signed_post(client, path, form, token=TOKEN):
    """POST `form` to `path` with the X-Twilio-Signature Twilio would send for BASE + path."""
    signature = RequestValidator(token).compute_signature(BASE + path, form)
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature})


class RecordingHttp(HttpClient):
    """Twilio's HTTP layer, recording each request and answering like the Messages API."""

    def __init__(self, fail_with=None):
        super().__init__(logging.getLogger("test.twilio"), is_async=False)
        self.requests = []
        self.fail_with = list(fail_with or [])

    def request(self, method, uri, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        self.requests.append({"method": method, "uri": uri, "data": dict(data or {}), "auth": auth})
        if self.fail_with:
            status = self.fail_with.pop(0)
            return Response(status, json.dumps({"code": 20429 if status == 429 else 21211,
                                                "message": "refused", "status": status}))
        sid = f"SM{len(self.requests):032d}"
        return Response(201, json.dumps({"sid": sid, "status": "queued", "to": data.get("To"),
                                         "body": data.get("Body")}))
