"""Reading every log line the app writes, to prove none carries a phone number or a code."""

import logging
import re

import pytest

#: Not the app's lines: the test's own HTTP client, and peewee's SQL trace, which writes every
#: query's parameters (phone numbers, codes, password hashes) by design and only at DEBUG.
NOT_THE_APPS = ("httpx", "httpcore", "peewee")
NATIONAL = "13800138000"


@pytest.fixture
def every_logger_at_debug(caplog):
    """caplog at DEBUG on the root and on every logger that has a level of its own."""
    caplog.set_level(logging.DEBUG)
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    levels = [(logger, logger.level) for logger in loggers if isinstance(logger, logging.Logger)]
    for logger, _level in levels:
        logger.setLevel(logging.DEBUG)
    yield caplog
    for logger, level in levels:
        logger.setLevel(level)


def log_lines(caplog, skip=NOT_THE_APPS):
    lines = []
    for record in caplog.records:
        if record.name.split(".")[0] in skip:
            continue
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        lines.append(f"{record.name}: {text}")
    return lines


def phone_in(line, national=NATIONAL):
    """A full phone number in a line, also when written with spaces, dashes or URL-encoded."""
    joined = re.sub(r"(?<=\d)(?:[\s+\-.]|%20|%2B|%2b)+(?=\d)", "", line)
    return national in joined


def leaks(caplog, codes=()):
    """The app's log lines that carry the phone number or one of `codes`."""
    lines = log_lines(caplog)
    found = [line for line in lines if phone_in(line)]
    found += [line for line in lines for code in codes if re.search(rf"(?<![0-9A-Z]){code}(?![0-9A-Z])", line)]
    return found
