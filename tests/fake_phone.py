"""A fake office phone on loopback, speaking SMS Gateway for Android's Local server API as the
app does: Basic auth, `POST /messages`, `GET /health`, `GET/POST /webhooks`, `DELETE
/webhooks/<id>`. It records what it was asked to send, can be switched off (connection refused)
or made to answer 503 or slowly (as over Wi-Fi), and signs webhook events the way the app signs
them."""

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakePhone:
    def __init__(self, username="sms", password="secret-pass", signing_key="sign-key"):  # noqa: S107 - a fake
        self.username, self.password, self.signing_key = username, password, signing_key
        self.sent = []  # (to, text, message id), in the order the phone took them
        self.webhooks = []
        self.failing = 0  # answer this many requests with 503
        self.latency = 0.0  # seconds each message waits for its answer
        self.sending = self.most_at_once = 0  # messages being answered now, and the most ever at once
        self._ids = itertools.count(1)
        self._events = itertools.count(1)
        self._lock = threading.Lock()
        phone = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body=None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self):
                expected = base64.b64encode(f"{phone.username}:{phone.password}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {expected}":
                    self._reply(401, {"message": "Unauthorized"})
                    return False
                with phone._lock:
                    if phone.failing:
                        phone.failing -= 1
                        self._reply(503, {"message": "Service Unavailable"})
                        return False
                return True

            def do_GET(self):
                if not self._authorised():
                    return
                if self.path == "/health":
                    self._reply(200, {"status": "pass", "version": "1.40.0", "releaseId": 1})
                elif self.path == "/webhooks":
                    self._reply(200, phone.webhooks)
                else:
                    self._reply(404, {"message": "Not Found"})

            def do_POST(self):
                if not self._authorised():
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path.split("?")[0] == "/messages":
                    message_id = f"msg-{next(phone._ids)}"
                    with phone._lock:
                        for to in body["phoneNumbers"]:
                            phone.sent.append((to, body["textMessage"]["text"], message_id))
                        phone.sending += 1
                        phone.most_at_once = max(phone.most_at_once, phone.sending)
                    time.sleep(phone.latency)
                    with phone._lock:
                        phone.sending -= 1
                    self._reply(202, {"id": message_id, "state": "Pending", "isHashed": False,
                                      "isEncrypted": False,
                                      "recipients": [{"phoneNumber": n, "state": "Pending"}
                                                     for n in body["phoneNumbers"]]})
                elif self.path == "/webhooks":
                    hook = {"id": f"hook-{len(phone.webhooks) + 1}", "url": body["url"], "event": body["event"]}
                    phone.webhooks.append(hook)
                    self._reply(201, hook)
                else:
                    self._reply(404, {"message": "Not Found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_port}"

    def texts_to(self, number):
        with self._lock:
            return [text for to, text, _ in self.sent if to == number]

    def event(self, kind, payload, event_id=None):
        """A webhook event as the app posts it: (body bytes, headers)."""
        event = {"deviceId": "office-phone", "event": kind, "id": event_id or f"ev-{next(self._events)}",
                 "payload": payload, "webhookId": "hook-1"}
        body = json.dumps(event, ensure_ascii=False).encode()
        return body, self.sign(body)

    def sign(self, body, timestamp=None, key=None):
        timestamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = hmac.new((key or self.signing_key).encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()
        return {"X-Signature": signature, "X-Timestamp": timestamp, "Content-Type": "application/json"}

    def received(self, sender, text, event_id=None, message_id="m1"):
        """An sms:received event for `text` from `sender`."""
        return self.event("sms:received", {"messageId": message_id, "message": text, "phoneNumber": sender,
                                           "sender": sender, "simNumber": 1,
                                           "receivedAt": "2026-12-01T10:00:00.000+08:00"}, event_id)
