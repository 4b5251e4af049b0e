"""A fake Telegram Bot API server for tests: the real python-telegram-bot stack talks to it over HTTP.

    with FakeTelegram(TOKEN) as telegram:
        application = build_application(TOKEN, dialogue, base_url=telegram.base_url)
        ...
        telegram.send_text(USER, "/start")
        telegram.wait_for_messages(2, chat_id=USER)

It listens on 127.0.0.1 (a free port) in a background thread and answers
`/bot<TOKEN>/<method>` like api.telegram.org: `{"ok": true, "result": ...}`, or
`{"ok": false, "error_code": ..., "description": ...}` with the same HTTP status. getUpdates is a
long poll over a queue the test fills (text messages, commands, button presses, shared contacts,
redeliveries of an update with the same update_id). Every call is recorded with its parameters.

Parameters are read from a query string, a JSON body, a form-encoded body or a multipart body.
python-telegram-bot 22 sends a form-encoded body whose values are JSON-encoded (numbers, lists and
objects as JSON text, strings as they are), and a multipart body when it uploads a file; both are
decoded back into Python values here.
"""

import contextlib
import email.parser
import email.policy
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

BOT = {
    "id": 4242000,
    "is_bot": True,
    "first_name": "Linli",
    "username": "linli_test_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
MAX_TEXT = 4096  # Telegram's limit for a message text, in characters
MAX_CALLBACK_DATA = 64  # ... and for a button's callback data, in bytes
MAX_POLL = 30  # seconds: the longest a getUpdates call is held open, whatever the bot asks

#: Parameters that are plain strings even when they look like JSON ("1", "true", "[x]").
STRING_PARAMS = {
    "text", "caption", "callback_query_id", "parse_mode", "url", "secret_token",
    "inline_message_id", "business_connection_id", "message_effect_id", "ip_address",
    "language_code", "action", "photo",
}


class ApiError(Exception):
    """An error answer: `{"ok": false, ...}` with this HTTP status."""

    def __init__(self, code, description):
        super().__init__(description)
        self.code, self.description = code, description


@dataclass
class Call:
    """One request the bot made: the method (as spelt in the URL), its parameters and any files."""

    method: str
    params: dict
    files: dict = field(default_factory=dict)
    content_type: str = ""
    result: object = None  # what the bot got back: the result, or the ApiError

    @property
    def ok(self):
        return not isinstance(self.result, ApiError)


@dataclass
class _Queued:
    update: dict
    forced: bool = False  # a redelivery: handed out once even though its id was confirmed
    delivered: bool = False

    @property
    def update_id(self):
        return self.update["update_id"]


def _decode_value(name, value):
    if name in STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _form(pairs):
    return {name: _decode_value(name, value) for name, value in pairs}


def _multipart(content_type, body):
    """Parse multipart/form-data into (params, files); files are {name: (filename, bytes)}."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ApiError(400, "Bad Request: malformed multipart body")
    params, files = {}, {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            files[name] = (part.get_filename(), payload)
        else:
            params[name] = _decode_value(name, payload.decode(part.get_content_charset() or "utf-8"))
    return params, files


class FakeTelegram:
    """The fake Bot API: start it (or use it as a context manager), point the bot at `base_url`."""

    def __init__(self, token, *, bot=None):
        self.token = token
        self.bot = dict(bot or BOT)
        self.calls = []
        self.webhook_url = ""
        self._queue = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._changed = threading.Condition()
        self._closing = False
        self._failures = {}
        self._slow = {}  # method: (seconds, chat id or None), for the next such call
        self.files = {}  # file_id: bytes, served at /file/bot<token>/photos/<file_id>.jpg
        self._server = None
        self._thread = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self):
        fake = self

        class Handler(_Handler):
            telegram = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="fake-telegram", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self):
        """Release any waiting long poll, then stop serving and close the socket."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def base_url(self):
        """What `Application.builder().base_url(...)` takes (the token is appended to it)."""
        return f"http://127.0.0.1:{self.port}/bot"

    # --- what the test sends to the bot ----------------------------------------------------

    @staticmethod
    def user(user_id, first_name="Test", language_code="zh-hans"):
        return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": language_code}

    @staticmethod
    def private_chat(user_id, first_name="Test"):
        return {"id": user_id, "type": "private", "first_name": first_name}

    def queue(self, update):
        """Queue an update (given without an update_id, it gets the next one); return it."""
        with self._changed:
            if "update_id" not in update:
                update = {"update_id": next(self._update_ids), **update}
            else:  # the ids that follow stay above this one, as Telegram's do
                self._update_ids = itertools.count(max(next(self._update_ids), update["update_id"] + 1))
            self._queue.append(_Queued(update))
            self._changed.notify_all()
        return update

    def redeliver(self, update):
        """Queue the very same update again, same update_id, as Telegram does when it is not sure
        the bot got it (a webhook that timed out, a bot restarted before confirming the offset)."""
        with self._changed:
            self._queue.append(_Queued(json.loads(json.dumps(update)), forced=True))
            self._changed.notify_all()
        return update

    def _user_message(self, user_id, first_name, **content):
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self.private_chat(user_id, first_name),
            "from": self.user(user_id, first_name),
            **content,
        }

    def send_text(self, user_id, text, *, first_name="Test", edited=False):
        """A user types `text` in the private chat; a leading /command gets its bot_command entity."""
        content = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            length = len(command.encode("utf-16-le")) // 2  # Telegram counts UTF-16 code units
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        message = self._user_message(user_id, first_name, **content)
        if edited:
            message["edit_date"] = message["date"]
            return self.queue({"edited_message": message})
        return self.queue({"message": message})

    def send_photo(self, user_id, data, *, caption=None, first_name="Test", as_file=False):
        """A user sends a photo (`data`, the largest size; Telegram also offers a thumbnail), or
        the same picture as a file."""
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = data
        if as_file:
            content = {"document": {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_name": "a.jpg",
                                    "mime_type": "image/jpeg", "file_size": len(data)}}
        else:
            thumb = f"{file_id}-small"
            self.files[thumb] = data
            content = {"photo": [{"file_id": thumb, "file_unique_id": f"u-{thumb}", "width": 90, "height": 90,
                                  "file_size": len(data)},
                                 {"file_id": file_id, "file_unique_id": f"u-{file_id}", "width": 800,
                                  "height": 600, "file_size": len(data)}]}
        if caption is not None:
            content["caption"] = caption
        return self.queue({"message": self._user_message(user_id, first_name, **content)})

    def share_contact(self, user_id, phone_number, *, contact_user_id=None, first_name="Test"):
        """A user shares a contact; `contact_user_id` is whose it is (their own: the sender's id)."""
        contact = {"phone_number": phone_number, "first_name": first_name}
        if contact_user_id is not None:
            contact["user_id"] = contact_user_id
        message = self._user_message(user_id, first_name, contact=contact)
        return self.queue({"message": message})

    def offered_message(self, chat_id, data):
        """The newest message the bot sent to `chat_id` with an inline button carrying `data`."""
        for call in reversed(self.calls_to("sendMessage")):
            if call.params.get("chat_id") != chat_id or not isinstance(call.result, dict):
                continue
            markup = call.params.get("reply_markup") or {}
            for row in markup.get("inline_keyboard", []):
                if any(button.get("callback_data") == data for button in row):
                    return call.result
        return None

    def press_button(self, user_id, data, *, message=None, first_name="Test"):
        """A user presses an inline button with callback `data` under a message of the bot's.

        Without `message`, the button must have been offered to this user: it is pressed under the
        newest message that had it, or an AssertionError says it was never offered.
        """
        if message is None:
            message = self.offered_message(user_id, data)
            assert message is not None, f"no button with data {data!r} was offered to {user_id}"
        query = {
            "id": str(next(self._callback_ids)),
            "from": self.user(user_id, first_name),
            "chat_instance": f"ci-{user_id}",
            "message": message,
            "data": data,
        }
        return self.queue({"callback_query": query})

    def fail_next(self, method, description, *, error_code=400, times=1, chat_id=None):
        """Make the next `times` calls of `method` (to `chat_id` when given) fail as Telegram
        would (say, a button press answered too late: "Bad Request: query is too old and response
        timeout expired or query ID is invalid"; a resident who blocked the bot: 403 "Forbidden:
        bot was blocked by the user")."""
        with self._changed:
            self._failures[method.lower()] = (chat_id, [ApiError(error_code, description)] * times)

    def slow_next(self, method, seconds, *, chat_id=None):
        """Make the next call of `method` (to `chat_id` when given) take `seconds` to answer, as
        Telegram does now and then."""
        with self._changed:
            self._slow[method.lower()] = (seconds, chat_id)

    def _wait_if_slowed(self, method, params):
        with self._changed:
            seconds, chat_id = self._slow.get(method.lower(), (0, None))
            if not seconds or (chat_id is not None and str(params.get("chat_id")) != str(chat_id)):
                return
            del self._slow[method.lower()]
        time.sleep(seconds)

    # --- what the bot did ------------------------------------------------------------------

    def calls_to(self, method):
        """Every call of `method` (failed ones too), oldest first."""
        with self._changed:
            return [c for c in self.calls if c.method.lower() == method.lower()]

    @staticmethod
    def _delivered_to(chat_id):
        return lambda call: call.ok and (chat_id is None or call.params.get("chat_id") == chat_id)

    def messages(self, chat_id=None):
        """The parameters of every sendMessage that succeeded (to `chat_id` when given), oldest first."""
        return [c.params for c in self.calls_to("sendMessage") if self._delivered_to(chat_id)(c)]

    def texts(self, chat_id=None):
        return [params.get("text", "") for params in self.messages(chat_id)]

    def wait_for(self, method, count, *, timeout=5.0, where=None):
        """Wait until `count` calls of `method` (matching `where(call)`) were made; return them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [c for c in self.calls if c.method.lower() == method.lower()
                         and (where is None or where(c))]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(c.method, c.params) for c in self.calls if c.method != "getUpdates"]
                    raise AssertionError(
                        f"{len(found)} of {count} {method} calls after {timeout}s; calls: {seen}"
                    )
                self._changed.wait(remaining)

    def wait_for_messages(self, count, *, chat_id=None, timeout=5.0):
        """Wait until `count` messages were sent (to `chat_id` when given); return their params."""
        calls = self.wait_for("sendMessage", count, timeout=timeout, where=self._delivered_to(chat_id))
        return [c.params for c in calls]

    def pending_updates(self):
        """How many queued updates were not handed out yet."""
        with self._changed:
            return sum(not q.delivered for q in self._queue)

    # --- the API -----------------------------------------------------------------------------

    def _take(self, offset, limit):
        """Updates for a getUpdates call with this offset (Telegram's rules; see redeliver)."""
        kept, batch = [], []
        for queued in self._queue:
            confirmed = offset is not None and queued.update_id < offset
            if confirmed and (queued.delivered or not queued.forced):
                continue  # confirmed by the offset: gone for good
            kept.append(queued)
            if len(batch) < limit:
                batch.append(queued)
        self._queue = kept
        for queued in batch:
            queued.delivered = True
        # Telegram hands updates out in increasing order; the bot confirms the last one's id.
        return [q.update for q in sorted(batch, key=lambda q: q.update_id)]

    def get_updates(self, params):
        offset = params.get("offset")
        offset = int(offset) if offset not in (None, "") else None
        limit = max(1, min(int(params.get("limit") or 100), 100))
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), MAX_POLL)
        with self._changed:
            while True:
                updates = self._take(offset, limit)
                remaining = deadline - time.monotonic()
                if updates or self._closing or remaining <= 0:
                    return updates
                self._changed.wait(remaining)

    def bot_message(self, chat_id, **content):
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if isinstance(chat_id, int) and chat_id > 0
                     else "group"},
            "from": {k: self.bot[k] for k in ("id", "is_bot", "first_name", "username")},
            **content,
        }

    @staticmethod
    def _check_markup(markup):
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _text(self, params):
        text = params.get("text")
        if text is None or not str(text).strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(str(text)) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        return str(text)

    @staticmethod
    def _chat_id(params):
        chat_id = params.get("chat_id")
        if chat_id in (None, ""):
            raise ApiError(400, "Bad Request: chat_id is empty")
        return chat_id

    def call(self, method, params, files):
        """Answer one API call: the `result` of a successful one, or raise ApiError."""
        name = method.lower()
        with self._changed:
            chat_id, failures = self._failures.get(name, (None, []))
            if failures and (chat_id is None or str(params.get("chat_id")) == str(chat_id)):
                raise failures.pop()
        if name == "getme":
            return dict(self.bot)
        if name == "getupdates":
            return self.get_updates(params)
        if name == "sendmessage":
            chat_id, text = self._chat_id(params), self._text(params)
            markup = self._check_markup(params.get("reply_markup"))
            content = {"text": text}
            if params.get("entities"):
                content["entities"] = params["entities"]
            if markup and "inline_keyboard" in markup:  # a message carries inline keyboards only
                content["reply_markup"] = markup
            return self.bot_message(chat_id, **content)
        if name == "sendphoto":
            chat_id = self._chat_id(params)
            if "photo" not in params and "photo" not in files:
                raise ApiError(400, "Bad Request: there is no photo in the request")
            size = {"file_id": f"photo-{next(self._message_ids)}", "file_unique_id": "u1",
                    "width": 320, "height": 320}
            content = {"photo": [size]}
            if params.get("caption"):
                content["caption"] = params["caption"]
            return self.bot_message(chat_id, **content)
        if name == "getfile":
            file_id = params.get("file_id")
            if file_id not in self.files:
                raise ApiError(400, "Bad Request: invalid file_id")
            return {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_size": len(self.files[file_id]),
                    "file_path": f"photos/{file_id}.jpg"}
        if name == "answercallbackquery":
            if not params.get("callback_query_id"):
                raise ApiError(400, "Bad Request: query_id_invalid")
            return True
        if name == "editmessagetext":
            text = self._text(params)
            markup = self._check_markup(params.get("reply_markup"))
            if params.get("inline_message_id"):
                return True
            content = {"text": text, "edit_date": int(time.time())}
            if markup and "inline_keyboard" in markup:
                content["reply_markup"] = markup
            message = self.bot_message(self._chat_id(params), **content)
            message["message_id"] = int(params.get("message_id") or 0)
            return message
        if name == "deletewebhook":
            self.webhook_url = ""
            if params.get("drop_pending_updates"):
                with self._changed:
                    self._queue.clear()
            return True
        if name == "setwebhook":
            self.webhook_url = params.get("url") or ""
            return True
        if name == "getwebhookinfo":
            return {"url": self.webhook_url, "has_custom_certificate": False,
                    "pending_update_count": self.pending_updates()}
        if name in ("setmycommands", "deletemycommands", "close", "logout", "sendchataction"):
            return True
        if name == "getmycommands":
            commands = [c.params.get("commands") for c in self.calls_to("setMyCommands")]
            return commands[-1] if commands else []
        raise ApiError(404, "Not Found")

    def record_and_call(self, method, params, files, content_type):
        call = Call(method, params, files, content_type)
        self._wait_if_slowed(method, params)
        try:
            call.result = self.call(method, params, files)
        except ApiError as exc:
            call.result = exc
            raise
        finally:
            with self._changed:
                self.calls.append(call)
                self._changed.notify_all()
        return call.result


class _Handler(BaseHTTPRequestHandler):
    telegram: FakeTelegram  # set on the subclass that FakeTelegram.start makes

    def log_message(self, format, *args):
        """Quiet: a test's output is about the bot, not about requests."""

    def _answer(self, status, payload):
        body = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # The bot may have given up on this call (a long poll cancelled at shutdown).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def _params(self, url):
        params, files = _form(parse_qsl(url.query, keep_blank_values=True)), {}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        content_type = self.headers.get("Content-Type") or ""
        kind = content_type.split(";")[0].strip().lower()
        if not body:
            pass
        elif kind == "application/json":
            try:
                loaded = json.loads(body)
            except ValueError:
                raise ApiError(400, "Bad Request: can't parse JSON") from None
            if not isinstance(loaded, dict):
                raise ApiError(400, "Bad Request: the JSON body must be an object")
            params.update(loaded)
        elif kind == "application/x-www-form-urlencoded":
            params.update(_form(parse_qsl(body.decode(), keep_blank_values=True)))
        elif kind == "multipart/form-data":
            more, files = _multipart(content_type, body)
            params.update(more)
        else:
            raise ApiError(400, f"Bad Request: unsupported content type {kind!r}")
        return params, files, kind

    def _file(self, path):
        """A file the bot downloads, as Telegram serves it."""
        name = path.rsplit("/", 1)[-1].removesuffix(".jpg")
        data = self.telegram.files.get(name) if path.startswith(f"/file/bot{self.telegram.token}/photos/") else None
        with self.telegram._changed:
            self.telegram.calls.append(Call("file", {"path": path}, {}, ""))
        self.send_response(200 if data is not None else 404)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()
        self.wfile.write(data or b"")

    def _serve(self):
        url = urlsplit(self.path)
        prefix = f"/bot{self.telegram.token}/"
        if url.path.startswith("/file/"):
            self._file(unquote(url.path))
            return
        try:
            if not url.path.startswith("/bot"):
                raise ApiError(404, "Not Found")
            if not url.path.startswith(prefix):
                raise ApiError(401, "Unauthorized")
            method = url.path[len(prefix):]
            params, files, kind = self._params(url)
            result = self.telegram.record_and_call(method, params, files, kind)
        except ApiError as exc:
            self._answer(exc.code, {"ok": False, "error_code": exc.code, "description": exc.description})
            return
        self._answer(200, {"ok": True, "result": result})

    do_GET = do_POST = _serve
