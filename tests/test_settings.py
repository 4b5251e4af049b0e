"""One settings object per entry point: defaults in one place, an incomplete setup refused at
start-up naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_telegram import FakeTelegram

from botapp.settings import IncompleteSettings, Settings, ledger_key

ROOT = Path(__file__).resolve().parent.parent


def settings(tmp_path, **env):
    return Settings.from_env(env, instance_dir=tmp_path)


def test_the_defaults_are_a_development_setup(tmp_path):
    s = settings(tmp_path)
    assert (s.default_region, s.timezone, s.sms_provider, s.sms_rate, s.trusted_proxies) == (
        "CN", "Asia/Shanghai", "", 1.0, 0)
    assert len(s.secret_key) == 64 and (tmp_path / "secret_key").exists()
    assert s.ledger_key == ledger_key("", s.secret_key) != s.secret_key.encode()
    assert settings(tmp_path, LEDGER_KEY="kept elsewhere").ledger_key == b"kept elsewhere"
    assert settings(tmp_path, TWILIO_ACCOUNT_SID="AC1", TWILIO_AUTH_TOKEN="t",
                    TWILIO_FROM_NUMBER="+1555").sms_provider == "twilio"  # unset means twilio when it is set up
    assert s.as_config()["DEFAULT_REGION"] == "CN"


@pytest.mark.parametrize("env, named", [
    ({"SMS_PROVIDER": "android", "ANDROID_SMS_URL": "http://10.0.0.2:8080", "ANDROID_SMS_USERNAME": "u"},
     "SMS_PROVIDER=android needs ANDROID_SMS_PASSWORD"),
    ({"SMS_PROVIDER": "twilio", "TWILIO_ACCOUNT_SID": "AC1"}, "TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER"),
    ({"SMS_PROVIDER": "carrier-pigeon"}, "it must be twilio or android"),
    ({"SMS_RATE": "fast"}, "SMS_RATE is 'fast': it must be a number"),
    ({"SMS_DAILY_LIMIT": "-1"}, "SMS_DAILY_LIMIT is '-1': it must not be negative"),
    ({"TIMEZONE": "Beijing"}, "TIMEZONE is 'Beijing'"),
    ({"DEFAULT_REGION": "China"}, "DEFAULT_REGION is 'China'"),
    ({"TELEGRAM_WEBHOOK_URL": "https://bot.example/telegram"}, "TELEGRAM_WEBHOOK_SECRET must be set"),
    ({"BOT_CPU": "first"}, "BOT_CPU is 'first': a CPU number"),
])
def test_an_incomplete_setup_is_refused_naming_the_variable(tmp_path, env, named):
    with pytest.raises(IncompleteSettings, match=named.replace("(", r"\(")):
        settings(tmp_path, **env)


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "botapp.worker"],
    [sys.executable, "-m", "botapp"],
    [str(Path(sys.executable).parent / "flask"), "--app", "web", "init-db"],
])
def test_every_entry_point_refuses_it_at_start_up(tmp_path, command):
    env = {**os.environ, "SECRET_KEY": "s", "DATABASE_URL": f"sqlite:///{tmp_path}/linli.db",
           "TELEGRAM_BOT_TOKEN": "1:x", "SMS_PROVIDER": "android", "ANDROID_SMS_URL": "http://10.0.0.2:8080"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "SMS_PROVIDER=android needs ANDROID_SMS_USERNAME, ANDROID_SMS_PASSWORD" in done.stderr
    assert not (tmp_path / "linli.db").exists()  # refused before anything was touched


CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def allowed_cpus(status):
    """The CPUs a /proc …/status file says its thread may run on, as Linux lists them ("0-1")."""
    return status.read_text().split("Cpus_allowed_list:")[1].split()[0]


def cpus_of_every_thread(pid):
    return {allowed_cpus(task / "status") for task in Path(f"/proc/{pid}/task").iterdir()}


@pytest.mark.skipif(len(CPUS) < 2, reason="needs a process allowed more than one CPU")
@pytest.mark.parametrize("choice", ["", str(CPUS[-1]) if CPUS else "", "any"])
def test_the_bot_keeps_its_threads_to_one_cpu_unless_told_not_to(db_url, tmp_path, choice):
    token = "4242:cpu-test"
    with FakeTelegram(token) as telegram:
        env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": "s", "TELEGRAM_BOT_TOKEN": token,
               "TELEGRAM_API_BASE": telegram.base_url, "BOT_CPU": choice}
        with open(tmp_path / "bot.log", "w") as log:
            bot = subprocess.Popen([sys.executable, "-m", "botapp"], cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            telegram.send_text(7001, "你好")  # answered in a database thread: every thread has started
            telegram.wait_for_messages(1, chat_id=7001, timeout=60)
            threads = cpus_of_every_thread(bot.pid)
        finally:
            bot.terminate()
            bot.wait(30)
    if choice == "any":
        assert threads == {allowed_cpus(Path("/proc/self/status"))}  # as the system gave them
    else:
        assert len(threads) == 1 and threads.pop() in ({choice} if choice else {str(cpu) for cpu in CPUS})
        assert "kept to CPU" in (tmp_path / "bot.log").read_text()


@pytest.mark.skipif(not CPUS, reason="Linux only")
def test_a_cpu_the_bot_may_not_use_is_refused_at_start_up_naming_the_variable(tmp_path):
    env = {**os.environ, "SECRET_KEY": "s", "DATABASE_URL": f"sqlite:///{tmp_path}/linli.db",
           "TELEGRAM_BOT_TOKEN": "1:x", "BOT_CPU": str(CPUS[-1] + 1)}
    done = subprocess.run([sys.executable, "-m", "botapp"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert f"BOT_CPU is '{CPUS[-1] + 1}': this process may use CPU {', '.join(map(str, CPUS))}" in done.stderr
    assert not (tmp_path / "linli.db").exists()
