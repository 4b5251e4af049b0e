"""Imports only point down: web -> botapp -> catalog -> community -> ledger (ARCHITECTURE.md)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["ledger", "community", "catalog", "botapp", "web"]
TRANSPORTS = {"flask", "flask_login", "flask_wtf", "flask_babel", "telegram", "twilio", "werkzeug"}


def imported_roots(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def wrong_way_imports(package, root=ROOT):
    rank = LAYERS.index(package)
    for path in sorted((root / package).rglob("*.py")):
        for line, name in imported_roots(path):
            if name in LAYERS and LAYERS.index(name) > rank:
                yield f"{path.relative_to(root)}:{line} imports {name}"
            if rank <= LAYERS.index("catalog") and name in TRANSPORTS:
                yield f"{path.relative_to(root)}:{line} imports {name}"


@pytest.mark.parametrize("package", LAYERS)
def test_imports_point_down(package):
    assert list(wrong_way_imports(package)) == []


def test_ledger_imports_nothing_from_the_project():
    project = set(LAYERS) - {"ledger"}
    bad = [
        f"{p.relative_to(ROOT)}:{line} imports {name}"
        for p in sorted((ROOT / "ledger").rglob("*.py"))
        for line, name in imported_roots(p)
        if name in project or name in TRANSPORTS
    ]
    assert bad == []


def test_the_checker_catches_an_upward_import(tmp_path):
    (tmp_path / "ledger").mkdir()
    (tmp_path / "ledger" / "bad.py").write_text("import flask\nfrom web import create_app\n")
    assert len(list(wrong_way_imports("ledger", tmp_path))) == 2
