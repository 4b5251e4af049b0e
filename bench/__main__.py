"""Run Linli's benchmarks: each figure beside its floor as it is measured, then a table and
bench/results.json. See BENCHMARKS.md.

PostgreSQL is the server in BENCH_DATABASE_URL (a superuser URL), or a throw-away one started
with scripts/pg-test-server in LINLI_PG_DIR (default: the temp folder's linli-pg-bench) on
LINLI_PG_PORT (default 54343), stopped and removed at the end. SQLite always runs.
"""

import argparse
import datetime
import importlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from . import report
from .common import ROOT, Results
from .databases import KINDS, Databases

SECTIONS = ("ledger_writes", "cost_growth", "sms_webhook", "android", "telegram", "counter", "outbox")


@dataclass(frozen=True)
class Sizes:
    """How much each section does: --quick checks that everything works, the default measures."""

    name: str
    write_seconds: float  # ledger writes: how long each run lasts
    write_max_ops: int  # ... and the most operations one writer makes
    growth_sizes: tuple  # cost growth: ledger entries in the small and the big database(s)
    growth_calls: int  # ... calls of balance() and of history() on each
    sms_requests: int  # SMS webhook: requests per mix
    http_clients: int  # ... client threads (keep-alive connections) of the load generator
    telegram_updates: int  # Telegram: updates fed to each bot
    counter_rounds: int  # counter: checkouts per counter (20 counters)
    outbox_notices: int  # outbox: notices drained at SMS_RATE, and again uncapped
    time_limit: float  # seconds any one load may run before it is cut short


QUICK = Sizes("quick", 1.0, 2_000, (10_000, 100_000), 300, 120, 4, 150, 3, 60, 120)
FULL = Sizes("full", 4.0, 100_000, (10_000, 1_000_000), 2_000, 1_000, 4, 1_000, 20, 300, 300)
HUGE = Sizes("huge", 4.0, 100_000, (10_000, 1_000_000, 10_000_000), 2_000, 1_000, 4, 1_000, 20, 300, 600)


class Context:
    """What a section gets: sizes, databases, where to write, and where its figures go."""

    def __init__(self, sizes, kinds, databases, workdir, results):
        self.sizes = sizes
        self.kinds = kinds
        self.databases = databases
        self.workdir = Path(workdir)
        self.results = results

    def command(self, section, kind=None):
        """The command that measures this section (on one database) again."""
        words = ["python -m bench"]
        if self.sizes.name != "full":
            words.append(f"--{self.sizes.name}")
        words.append(f"--only {section}")
        if kind:
            words.append(f"--databases {kind}")
        return " ".join(words)

    def log(self, name):
        """Where a child process of this run writes its output."""
        return self.workdir / f"{name}.log"


def _run_text(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except OSError:
        return ""


def machine(databases, workdir):
    """What the figures were measured on."""
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    df = _run_text(["df", "-T", str(workdir)]).splitlines()[-1:]
    fields = df[0].split() if df else []
    filesystem = [f"{fields[1]} ({fields[0]} on {fields[-1]})"] if len(fields) >= 7 else []
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "nproc": _run_text(["nproc"]),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "workdir_filesystem": filesystem[0] if filesystem else "",
        "load_average_at_start": os.getloadavg(),
        **databases.versions(),
    }


def _fmt(value, unit=""):
    return "-" if value is None else report.number(value) + unit


def table(results):
    """The results as a text table: figure, database, value, floor, ratio."""
    rows = [("section", "figure", "db", "Linli", "floor", "ratio", "floor is")]
    for f in results.figures:
        unit = f" {f.unit}" if f.unit else ""
        rows.append((f.section, f.name, f.database, _fmt(f.value, unit), _fmt(f.floor, unit),
                     _fmt(f.ratio), f.floor_name))
    lines = _columns(rows)
    if results.memory:
        lines.append("")
        mem = [("process", "db", "idle RSS MB", "loaded RSS MB", "peak (VmHWM) MB", "load")]
        for m in results.memory:
            mem.append((m.role, m.database, _mb(m.idle_rss_kb), _mb(m.loaded_rss_kb), _mb(m.peak_hwm_kb), m.load))
        lines += _columns(mem)
    return "\n".join(lines)


def _mb(kb):
    return "-" if kb is None else f"{kb / 1024:.1f}"


def _columns(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        out.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def parse_args(argv):
    """The command line, checked."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n")[1])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="tiny sizes: checks that it all works (~3 minutes)")
    size.add_argument("--huge", action="store_true", help="also measure cost growth at 10 million entries")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default: all of {', '.join(SECTIONS)})")
    parser.add_argument("--databases", default=",".join(KINDS), help="sqlite, postgresql or both (default)")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results.json"), help="where to write the results")
    parser.add_argument("--workdir", default=None, help="where databases and logs go (default: a fresh temp folder)")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    args.kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    for section in args.sections:
        if section not in SECTIONS:
            parser.error(f"unknown section {section!r}; choose from {', '.join(SECTIONS)}")
    for kind in args.kinds:
        if kind not in KINDS:
            parser.error(f"unknown database {kind!r}; choose from {', '.join(KINDS)}")
    return args


def _interrupted(signum, frame):
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def main(argv=None):
    """Run the chosen sections; print the figures and write them to the output file."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Stopped from outside, still stop every server and process started so far (finally blocks).
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupted)
    sizes = QUICK if args.quick else HUGE if args.huge else FULL
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="linli-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = Results()
    databases = Databases(workdir, args.kinds)
    started = time.monotonic()
    failed = []
    about = {}
    try:
        databases.start()
        about = machine(databases, workdir)
        print(f"Linli benchmarks ({sizes.name}) on {about['nproc']} cores, Python {about['python']}, "
              f"SQLite {about['sqlite']}, PostgreSQL {about.get('postgresql', '-')}; work folder {workdir}",
              flush=True)
        ctx = Context(sizes, args.kinds, databases, workdir, results)
        for section in args.sections:
            print(f"== {section}", flush=True)
            t0 = time.monotonic()
            try:
                importlib.import_module(f"bench.{section}").run(ctx)
            except Exception as exc:
                failed.append(section)
                results.note(f"{section} failed: {type(exc).__name__}: {exc}")
                traceback.print_exc()
            print(f"   ({time.monotonic() - t0:.0f} s)", flush=True)
    finally:
        databases.close()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    about["seconds"] = round(time.monotonic() - started, 1)
    about["sizes"] = asdict(sizes)
    output = {
        "machine": about,
        "figures": [f.as_dict() for f in results.figures],
        "memory": [asdict(m) for m in results.memory],
        "notes": results.notes,
        "failed_sections": failed,
    }
    Path(args.output).write_text(json.dumps(output, indent=2, ensure_ascii=False, default=str) + "\n")
    print()
    print(table(results))
    print(f"\n{len(results.figures)} figures in {about['seconds']:.0f} s; written to {args.output}")
    if failed:
        print(f"FAILED sections: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
