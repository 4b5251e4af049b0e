"""The HTTP load generator: runs in its own process, client threads on keep-alive connections.

Only 127.0.0.1. Every request list is prepared (and signed) before the clock starts; a load stops
when its requests are done or its time limit has passed, whichever comes first.
"""

import html
import http.client
import itertools
import multiprocessing
import queue as queue_module
import re
import threading
import time
import traceback
from urllib.parse import urlencode

from .common import LOOPBACK, latency_ms

CONTEXT = multiprocessing.get_context("spawn")
CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
CHECKOUT_KEY = re.compile(r'name="checkout_key" value="([^"]+)"')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
QUANTITY = re.compile(r'name="(qty-\d+)"')


class Connection:
    """One client's keep-alive connection that reconnects when the server closes it."""

    def __init__(self, port, timeout=60):
        self.port, self.timeout = port, timeout
        self.conn = None
        self.cookies = {}

    def request(self, method, path, body=None, headers=None):
        """Send one request; return (status, headers, body text)."""
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server had closed: once more on a new one.
                self.close()
                if attempt:
                    raise
                continue
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    cookie, _, _ = value.partition(";")
                    key, _, val = cookie.partition("=")
                    self.cookies[key.strip()] = val.strip()
            if response.will_close:
                self.close()
            return response.status, dict(response.getheaders()), data.decode("utf-8", "replace")
        raise RuntimeError("unreachable")

    def form(self, path, fields):
        body = urlencode(fields).encode()
        return self.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _threads(target, count):
    errors = []

    def guarded(index):
        try:
            target(index)
        except Exception:
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=guarded, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads, errors


# --- independent requests (the SMS webhook) ------------------------------------------------------


def requests_load(port, warmup, requests, clients, time_limit, expect, rate=None):
    """Send prepared (path, body, headers) requests from `clients` threads; measure each one.

    `expect` is a substring every good answer carries (for TwiML with a reply: "<Message>").
    Without `rate` each client sends its next request when the last is answered; with it, request
    i is due i / rate seconds after the start and is timed from then (waiting counts).
    """
    for path, body, headers in warmup:
        Connection(port).request("POST", path, body, headers)
    counter = itertools.count()
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    samples = []
    deadline, begun = [0.0], [0.0]

    def client(index):
        conn = Connection(port)
        start.wait()
        mine = []
        while True:
            with lock:
                i = next(counter)
            if i >= len(requests) or time.monotonic() > deadline[0]:
                break
            path, body, headers = requests[i]
            t0 = time.monotonic()
            if rate:
                t0 = begun[0] + i / rate
                time.sleep(max(0.0, t0 - time.monotonic()))
            status, _, text = conn.request("POST", path, body, headers)
            mine.append((time.monotonic() - t0, status, expect in text))
        conn.close()
        with lock:
            samples.extend(mine)

    threads, errors = _threads(client, clients)
    deadline[0] = time.monotonic() + time_limit
    t0 = begun[0] = time.monotonic()
    start.wait()
    for thread in threads:
        thread.join(time_limit + 60)
    elapsed = time.monotonic() - t0
    if errors:
        raise RuntimeError(errors[0])
    good = [s for s in samples if 200 <= s[1] < 300]
    return {"requests": len(samples), "ok": len(good), "with_expected": sum(1 for s in good if s[2]),
            "statuses": sorted({s[1] for s in samples}), "seconds": elapsed,
            "requests_per_s": len(good) / elapsed, **latency_ms([s[0] for s in good])}


# --- counters (scan → checkout → receipt) --------------------------------------------------------


def log_in(port, username, password):
    """Log a clerk in through /login (with its CSRF token); return the session's cookies."""
    conn = Connection(port)
    try:
        status, _, page = conn.request("GET", "/login")
        token = CSRF.search(page).group(1)
        status, _, _ = conn.form("/login", {"csrf_token": token, "username": username, "password": password})
        if status != 302:
            raise RuntimeError(f"login of {username} answered {status}")
        return dict(conn.cookies)
    finally:
        conn.close()


def _checkout(conn, token, code):
    """One scan → checkout → receipt; return None when it worked, else what went wrong."""
    status, _, page = conn.form("/counter/scan", {"csrf_token": token, "code": code})
    key, quantity = CHECKOUT_KEY.search(page), QUANTITY.search(page)
    if status != 200 or key is None or quantity is None:
        return f"scan answered {status} without a cart"
    # What the cart's form carries (its key, the resident, the code), and one of the first goods.
    carried = {name: html.unescape(value) for name, value in HIDDEN.findall(page)}
    status, headers, _ = conn.form("/counter/checkout", {**carried, "csrf_token": token, quantity.group(1): "1"})
    location = headers.get("Location", "")
    if status != 302 or "/counter/receipts/" not in location:
        return f"checkout answered {status} to {location or 'nowhere'}"
    status, _, page = conn.request("GET", location[location.index("/counter/receipts/"):])
    if status != 200 or 'id="balance"' not in page:
        return f"receipt answered {status}"
    return None


def counter_load(port, sessions, codes, time_limit, pace=0.0):
    """One thread per counter, each checking out its codes one after the other.

    `sessions[i]` are the cookies of counter i's logged-in clerk (none for the bare app);
    `codes[i]` the QR codes it scans, one checkout each. With `pace` (seconds), each counter
    starts a checkout every `pace` seconds, the counters spread evenly over that time, and a
    checkout's time runs from when it was due (waiting behind a slow one counts); without it,
    each starts the next as soon as the last is done.
    """
    clients = len(codes)
    start = threading.Barrier(clients + 1)
    lock = threading.Lock()
    samples, failures = [], []
    deadline = [0.0]

    def counter(index):
        conn = Connection(port)
        conn.cookies.update(sessions[index])
        status, _, page = conn.request("GET", "/counter/")
        found = CSRF.search(page)
        token = found.group(1) if found else ""
        start.wait()
        first = time.monotonic() + pace * index / clients
        mine, wrong = [], []
        for n, code in enumerate(codes[index]):
            if time.monotonic() > deadline[0]:
                break
            t0 = time.monotonic()
            if pace:
                t0 = first + n * pace
                time.sleep(max(0.0, t0 - time.monotonic()))
            problem = _checkout(conn, token, code)
            if problem:
                wrong.append(problem)
            else:
                mine.append(time.monotonic() - t0)
        conn.close()
        with lock:
            samples.extend(mine)
            failures.extend(wrong)

    threads, errors = _threads(counter, clients)
    deadline[0] = time.monotonic() + time_limit + 60  # each counter first opens its page
    start.wait()
    deadline[0] = time.monotonic() + time_limit
    t0 = time.monotonic()
    for thread in threads:
        thread.join(time_limit + 120)
    elapsed = time.monotonic() - t0
    if errors:
        raise RuntimeError(errors[0])
    return {"checkouts": len(samples), "failed": len(failures), "failures": sorted(set(failures))[:5],
            "seconds": elapsed, "checkouts_per_s": len(samples) / elapsed, **latency_ms(samples)}


# --- in a separate process ---------------------------------------------------------------------


def _child(function, args, out):
    try:
        out.put({"ok": True, "result": function(*args)})
    except BaseException:
        out.put({"ok": False, "error": traceback.format_exc()})


def in_process(function, *args, timeout):
    """Run `function(*args)` in a fresh process; return its result (or raise its error)."""
    out = CONTEXT.Queue()
    process = CONTEXT.Process(target=_child, args=(function, args, out), daemon=True)
    process.start()
    try:
        answer = out.get(timeout=timeout)
    except queue_module.Empty:
        raise RuntimeError(f"the load generator did not finish within {timeout:.0f} s") from None
    finally:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join(timeout=10)
    if not answer["ok"]:
        raise RuntimeError("the load generator failed:\n" + answer["error"])
    return answer["result"]
