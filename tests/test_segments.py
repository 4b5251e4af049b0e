"""SMS segment arithmetic, and every SMS reply template within its two-segment budget."""

import ast
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from botapp.dialogue import SHORT, Dialogue
from botapp.segments import MAX_SEGMENTS, is_gsm7, segments, units

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("text, expected", [
    ("", 1), ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
    ("€" * 80, 1), ("€" * 81, 2), ("[" * 153, 2),
    ("中" * 70, 1), ("中" * 71, 2), ("中" * 134, 2), ("中" * 135, 3),
    ("a" * 69 + "中", 1), ("a" * 70 + "中", 2),
    ("😀" * 35, 1), ("😀" * 36, 2),  # an emoji is two UTF-16 units
])
def test_segments(text, expected):
    assert segments(text) == expected


def test_gsm7_and_units():
    assert is_gsm7("Hello @£$ {}") and not is_gsm7("你好")
    assert units("{}") == 4 and units("ab") == 2 and units("😀") == 2


def sms_templates():
    """Every message the resident channels can send: each `_("...")` in botapp/."""
    for path in (ROOT / "botapp").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                yield node.args[0].value


# Worst cases: the longest quoted name, title and place; Chinese text forces UCS-2 everywhere.
FILL = {"code": "A999", "title": "志" * SHORT, "name": "名" * SHORT, "community": "社" * SHORT,
        "place": "地" * SHORT, "when": "11-28 15:46", "points": "100000", "balance": "1000000",
        "reason": "因" * 40, "minutes": 10, "time": "23:59", "n": 99, "phone": "0594-23456789", "choices": "1活动",
        "goods": "品" * SHORT, "stock": 99999, "items": "品" * 40, "link": "https://t.me/linli_community_bot?start=link-ABCDEFGH23",
        "case": "20419", "hours": 120, "what": "做" * SHORT, "original": "20418"}


def test_the_catalogue_has_the_sms_templates():
    with open(ROOT / "translations/zh_Hans/LC_MESSAGES/messages.po", "rb") as f:
        translated = {m.id for m in read_po(f) if m.id and m.string}
    ids = list(sms_templates())
    assert len(ids) > 30
    assert [msgid for msgid in ids if msgid not in translated] == []
    assert any(msgid.startswith("Upcoming activities") for msgid in ids)


@pytest.mark.parametrize("language", ["en", "zh_Hans"])
def test_every_sms_template_fits_two_segments(language):
    dialogue = Dialogue(str(ROOT / "translations"))
    _ = dialogue.gettext(language)
    too_long = []
    for msgid in sms_templates():
        params = {key: FILL[key] for key in re.findall(r"%\((\w+)\)[sd]", msgid)}
        text = _(msgid, **params)
        if segments(text) > MAX_SEGMENTS:
            too_long.append((segments(text), text))
    assert too_long == []
