"""The audit log reads as sentences: every action the code records has one, in both languages."""

import ast
from pathlib import Path

from community.models import AuditEvent
from web.admin import SENTENCES, sentence

ROOT = Path(__file__).resolve().parent.parent


def recorded_actions():
    """The action names passed to community.audit.record anywhere in the project."""
    actions = set()
    for path in [*ROOT.glob("community/*.py"), *ROOT.glob("catalog/*.py"), *ROOT.glob("web/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "record" and len(node.args) > 1:
                action = node.args[1]
                for value in (action.body, action.orelse) if isinstance(action, ast.IfExp) else (action,):
                    assert isinstance(value, ast.Constant), f"{path.name}:{node.lineno}: name the action literally"
                    actions.add(value.value)
    return actions


def test_every_recorded_action_has_a_sentence():
    actions = recorded_actions()
    assert "checkout" in actions and "card.pin_wrong" in actions
    assert sorted(actions - set(SENTENCES)) == []


def test_sentences_read_without_keys_or_json(app):
    with app.test_request_context():
        for action in SENTENCES:
            text = sentence(AuditEvent(action=action, target="x:12", detail="{}"))
            assert action not in text and "{" not in text and "%(" not in text
        checkout = sentence(AuditEvent(action="checkout", target="redemption:7", detail='{"total": 150}'))
        assert checkout == "办理兑换，扣 1.5 积分（小票 7）"
