"""What every section shares: statistics, results, child processes, their memory, loopback HTTP."""

import contextlib
import http.client
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
LOOPBACK = "127.0.0.1"


# --- statistics --------------------------------------------------------------------------------


def percentile(values, fraction):
    """The value below which `fraction` of `values` lie (nearest rank); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


def latency_ms(seconds):
    """Median and 99th percentile of latencies given in seconds, in milliseconds."""
    if not seconds:
        return {"p50_ms": None, "p99_ms": None, "n": 0}
    return {"p50_ms": statistics.median(seconds) * 1000, "p99_ms": percentile(seconds, 0.99) * 1000,
            "n": len(seconds)}


def ratio_of(value, floor):
    """value / floor, or None when either is missing or the floor is zero."""
    if value is None or not floor:
        return None
    return value / floor


# --- results -----------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured figure beside its floor; `ratio` is value / floor."""

    section: str
    name: str
    database: str
    value: float | None
    floor: float | None
    unit: str
    floor_name: str
    command: str
    better: str = "higher"  # which way is better for `value`: "higher" or "lower"
    detail: dict = field(default_factory=dict)

    @property
    def ratio(self):
        return ratio_of(self.value, self.floor)

    def as_dict(self):
        return {**asdict(self), "ratio": self.ratio}


@dataclass
class Memory:
    """Peak and resident memory of one process of the given role, idle and after its load."""

    role: str
    database: str
    idle_rss_kb: int | None
    loaded_rss_kb: int | None
    peak_hwm_kb: int | None
    load: str
    command: str


class Results:
    """Collects figures and memory readings as the sections run."""

    def __init__(self):
        self.figures = []
        self.memory = []
        self.notes = []

    def add(self, figure):
        """Keep a figure and print it at once."""
        self.figures.append(figure)
        shown = f"{figure.value:.4g}" if figure.value is not None else "-"
        floor = f"{figure.floor:.4g}" if figure.floor is not None else "-"
        r = f"{figure.ratio:.2f}" if figure.ratio is not None else "-"
        print(f"  {figure.section} | {figure.name} [{figure.database}]: {shown} {figure.unit} "
              f"(floor {floor}, ratio {r})", flush=True)
        return figure

    def add_memory(self, memory):
        """Keep a memory reading."""
        self.memory.append(memory)
        return memory

    def note(self, text):
        """Keep and print something the reader of the results should know."""
        self.notes.append(text)
        print(f"  note: {text}", flush=True)


# --- processes ---------------------------------------------------------------------------------


def free_port():
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


class Child:
    """A child process in its own process group, with its output in a log file; stopped as a group."""

    def __init__(self, argv, *, env, log_path, cwd=ROOT):
        self.argv = argv
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self):
        return self.process.pid

    def _exited(self):
        """The child's waitid() result once it has exited, else None; it is left unreaped, so its
        id (and so its process group's id) cannot be given to another process meanwhile."""
        if self.process.returncode is not None:
            return self.process.returncode
        return os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)

    def alive(self):
        """Tell whether the child is still running."""
        return self._exited() is None

    def check_alive(self):
        """Raise, with the end of its log, if the child has exited."""
        exited = self._exited()
        if exited is not None:
            status = getattr(exited, "si_status", exited)
            raise RuntimeError(f"{self.argv[:4]} exited with {status}; see {self.log_path}:\n" + self.tail())

    def tail(self, lines=30):
        """The last lines of the child's log."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def _signal_group(self, signum):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def _wait_exit(self, timeout):
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, timeout=10):
        """SIGTERM the child's process group, SIGKILL it after `timeout` seconds, then reap the child.

        The group is signalled only while the child is unreaped, so its id is still this group's.
        """
        try:
            if self.process.returncode is None:
                if self.alive():
                    self._signal_group(signal.SIGTERM)
                    if not self._wait_exit(timeout):
                        self._signal_group(signal.SIGKILL)
                        self._wait_exit(timeout)
                self._signal_group(signal.SIGKILL)  # whatever of the group outlived the child
                self.process.wait(timeout=timeout)
        finally:
            self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


PRIVATE = ("TWILIO_", "TELEGRAM_", "DATABASE_URL", "SECRET_KEY", "SMS_RATE", "PUBLIC_BASE_URL")


def child_env(**values):
    """The environment for a project process: this one's, less provider settings and proxies
    (so that nothing it sends can leave the machine), plus `values`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(PRIVATE) and not k.lower().endswith("_proxy")}
    env.update({k: str(v) for k, v in values.items()})
    env["NO_PROXY"] = env["no_proxy"] = f"{LOOPBACK},localhost"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def children_of(pid):
    """The ids of the direct child processes of `pid`."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def memory_kb(pid):
    """VmRSS and VmHWM (peak resident set) of a process from /proc, in kB; None when it is gone."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
    except (OSError, ValueError):
        return {"VmRSS": None, "VmHWM": None}
    return values


def cpu_seconds(pid):
    """The CPU time (user and system) a running process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid):
    """Start VmHWM afresh from the current resident set (Linux: write 5 to /proc/PID/clear_refs).

    Then a later VmHWM is the peak during what happened in between, not since the process began.
    """
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def max_memory(pids):
    """The largest VmRSS and VmHWM among `pids`."""
    readings = [memory_kb(pid) for pid in pids]
    rss = [r["VmRSS"] for r in readings if r.get("VmRSS") is not None]
    hwm = [r["VmHWM"] for r in readings if r.get("VmHWM") is not None]
    return {"VmRSS": max(rss) if rss else None, "VmHWM": max(hwm) if hwm else None}


# --- loopback HTTP -----------------------------------------------------------------------------


def http_get(port, path, timeout=5):
    """GET http://127.0.0.1:port/path; return (status, body bytes)."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_http(port, path, child=None, timeout=60):
    """Wait until GET `path` answers 200 (the server is up and its workers have booted)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if child is not None:
            child.check_alive()
        try:
            status, _ = http_get(port, path)
            if status == 200:
                return
            last = f"status {status}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}{path} within {timeout}s ({last})")


class Gunicorn(Child):
    """`gunicorn -w WORKERS APP` on loopback, as the Procfile runs the web process."""

    def __init__(self, app, *, env, log_path, workers=2):
        self.port = free_port()
        argv = [PYTHON, "-m", "gunicorn", "-w", str(workers), "-b", f"{LOOPBACK}:{self.port}", app]
        super().__init__(argv, env=env, log_path=log_path)
        self.workers = workers
        self.command = f"gunicorn -w {workers} -b {LOOPBACK}:PORT '{app}'"

    def ready(self, path="/healthz", timeout=90):
        """Wait for the workers to answer, then hit each a few times so both have warmed up."""
        wait_http(self.port, path, child=self, timeout=timeout)
        deadline = time.monotonic() + timeout
        while len(self.worker_pids()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.1)
        for _ in range(4 * self.workers):
            http_get(self.port, path)
        return self

    def worker_pids(self):
        """The ids of gunicorn's worker processes."""
        return children_of(self.pid)

    def memory(self):
        """The largest VmRSS and VmHWM among the workers (the master only forks them)."""
        return max_memory(self.worker_pids())

    def reset_peak(self):
        """Start each worker's VmHWM afresh."""
        for pid in self.worker_pids():
            reset_peak(pid)


class FakeProvider:
    """A provider's API on loopback (Twilio's Messages API, the office phone's local server):
    answers each POST through `answer(path, headers, raw_body)` -> (status, JSON payload, counted)
    and records when each counted message came, answering `latency` seconds later (a real API's
    round trip)."""

    def __init__(self, latency=0.0):
        self.times = []
        self.latency = latency
        self.changed = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the clients' requests sessions expect
            disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall

            def log_message(self, format, *args):
                """Quiet."""

            def do_POST(self):  # noqa: N802 - the name http.server calls
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with fake.changed:
                    status, payload, counted = fake.answer(self.path, self.headers, raw)
                    if counted:
                        fake.times.append(time.monotonic())
                        fake.changed.notify_all()
                time.sleep(fake.latency)
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def answer(self, path, headers, raw):
        raise NotImplementedError

    @property
    def base(self):
        return f"http://{LOOPBACK}:{self.server.server_address[1]}"

    def wait(self, count, timeout, child):
        """Wait until `count` messages came in (or the child died, or time ran out)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.times) < count:
                child.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(self.times)} of {count} messages after {timeout:.0f} s; "
                                       f"see {child.log_path}")
                self.changed.wait(0.2)

    def stop(self):
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
