"""Hardening found by trying the app as an attacker would: redirects that leave the site, headers,
cookies behind HTTPS, sessions at login, file modes, and backups over the live database."""

import os
import stat

import community_factory as make
import pytest
from webforms import Browser

from web import create_app


@pytest.fixture
def office(app):
    with app.app_context():
        make.build_place()
        make.staff("admin", username="boss")


@pytest.mark.parametrize("target", ["/%09/evil.example/", "//evil.example/", "/\\evil.example", "https://evil.example/",
                                    "/%0d%0aSet-Cookie:x=1", "/\t/evil.example", "javascript:alert(1)"])
def test_no_redirect_leaves_the_site(client, office, target):
    browser = Browser(client)
    browser.get(f"/login?next={target}")
    response = browser.submit(has="password", username="boss", password=make.PASSWORD, follow_redirects=False)
    assert response.status_code == 302 and response.location == "/", response.location
    form = browser.get("/").get_data(as_text=True) and browser.find(action="/language")
    switched = browser.send(form, form.forged({"next": target}, button="lang=en"), follow_redirects=False)
    assert switched.status_code == 302 and switched.location == "/"


def test_every_page_carries_the_security_headers(client, office):
    for response in (client.get("/login"), client.get("/healthz"), client.get("/nowhere")):
        headers = response.headers
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert "unsafe-inline" not in headers["Content-Security-Policy"].split("script-src")[1].split(";")[0]
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin" and "Strict-Transport-Security" not in headers


def test_behind_an_https_proxy_cookies_are_secure_and_hsts_is_sent(db_url):
    app = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "t", "TRUSTED_PROXIES": 1})
    with app.app_context():
        make.build_place()
        make.staff("admin", username="boss")
    client = app.test_client()
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    page = client.get("/login", headers=https)
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Secure" in page.headers.get("Set-Cookie", "")


def test_logging_in_starts_a_new_session_with_a_new_csrf_token(client, office):
    browser = Browser(client)
    browser.get("/login")
    before = browser.token()
    browser.login("boss")
    assert browser.token() != before


def test_the_secret_key_and_the_database_are_readable_by_their_owner_only(tmp_path, monkeypatch):
    from botapp.instance import secret_key

    monkeypatch.delenv("SECRET_KEY", raising=False)
    secret_key(tmp_path / "instance")
    assert stat.S_IMODE((tmp_path / "instance" / "secret_key").stat().st_mode) == 0o600
    path = tmp_path / "fresh.db"
    create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{path}", "SECRET_KEY": "t"}).test_cli_runner().invoke(
        args=["init-db"])
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_a_backup_never_overwrites_the_live_database_or_its_wal(tmp_path):
    path = tmp_path / "live.db"
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{path}", "SECRET_KEY": "t"})
    runner = app.test_cli_runner()
    runner.invoke(args=["init-db"])
    for target in (path, tmp_path / "live.db-wal", tmp_path / "live.db-shm"):
        result = runner.invoke(args=["backup", str(target), "--force"])
        assert result.exit_code != 0 and "live database" in result.output, target
    assert os.path.getsize(path) > 0


def test_a_session_ends_after_two_idle_hours_and_after_a_working_day(client, office, monkeypatch):
    import time

    browser = Browser(client)
    browser.login("boss")
    real = time.time()
    for later, ends in ((3600, False), (2 * 3600 + 3700, True)):
        monkeypatch.setattr(time, "time", lambda later=later: real + later)
        assert (client.get("/").status_code == 302) == ends, later
    browser.login("boss")
    start = time.time()
    for hour in range(1, 14):  # busy all day, never idle: still over after twelve hours
        monkeypatch.setattr(time, "time", lambda hour=hour: start + hour * 3600 - 60)
        response = client.get("/")
    assert response.status_code == 302
