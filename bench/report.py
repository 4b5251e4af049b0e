"""`python -m bench.report [bench/results.json]`: the results as the Markdown tables of BENCHMARKS.md."""

import json
import sys
from pathlib import Path

from .common import ROOT

SECTION_TITLES = {
    "ledger_writes": "Ledger writes",
    "cost_growth": "Cost growth",
    "sms_webhook": "SMS webhook",
    "android": "SMS via office phone",
    "telegram": "Telegram",
    "counter": "Counter",
    "outbox": "Outbox",
}


def number(value):
    """A figure rounded for reading."""
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def machine_lines(machine):
    """The machine a run was measured on, as Markdown list items."""
    pg = machine.get("postgresql", "–")
    settings = machine.get("postgresql_settings") or {}
    shown = ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))
    return [
        f"- date: {machine.get('date', '–')} (UTC); whole run {machine.get('seconds', '–')} s, "
        f"sizes `{(machine.get('sizes') or {}).get('name', '–')}`",
        f"- `nproc`: {machine.get('nproc', '–')} ({machine.get('cpu', '–')}); load average at start "
        f"{', '.join(f'{x:.2f}' for x in machine.get('load_average_at_start', []))}",
        f"- `python -V`: Python {machine.get('python', '–')}; kernel {machine.get('kernel', '–')}",
        f"- SQLite {machine.get('sqlite', '–')}; work folder on `{machine.get('workdir_filesystem', '–')}`",
        f"- PostgreSQL {pg}" + (f" ({shown})" if shown else ""),
    ]


def figure_table(figures):
    """The figures as a Markdown table."""
    lines = ["| section | figure | db | Linli | floor | ratio | floor is | command |",
             "| --- | --- | --- | ---: | ---: | ---: | --- | --- |"]
    for f in figures:
        unit = f" {f['unit']}" if f["unit"] else ""
        lines.append(
            f"| {SECTION_TITLES.get(f['section'], f['section'])} | {f['name']} | {f['database']} "
            f"| {number(f['value'])}{unit} | {number(f['floor'])}{unit} | {number(f['ratio'])} "
            f"| {f['floor_name']} | `{f['command']}` |"
        )
    return lines


def memory_table(memory):
    """The memory readings as a Markdown table."""
    lines = ["| process | db | load | idle RSS (MB) | RSS after (MB) | peak during load, VmHWM (MB) | command |",
             "| --- | --- | --- | ---: | ---: | ---: | --- |"]
    for m in memory:
        cells = [m["idle_rss_kb"], m["loaded_rss_kb"], m["peak_hwm_kb"]]
        shown = " | ".join("–" if kb is None else f"{kb / 1024:.1f}" for kb in cells)
        lines.append(f"| {m['role']} | {m['database']} | {m['load']} | {shown} | `{m['command']}` |")
    return lines


def render(results):
    """Everything of one run, as Markdown."""
    lines = ["Machine:", "", *machine_lines(results.get("machine", {})), "", *figure_table(results["figures"])]
    if results.get("memory"):
        lines += ["", *memory_table(results["memory"])]
    if results.get("notes"):
        lines += ["", "Notes from the run:", "", *[f"- {note}" for note in results["notes"]]]
    return "\n".join(lines)


def main(argv=None):
    """Print the results file named on the command line (default: bench/results.json)."""
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else ROOT / "bench" / "results.json"
    print(render(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
