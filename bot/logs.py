"""Logging: one ``key=value`` line per event on stderr, quiet by default, secrets scrubbed."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from bot.platforms import PLATFORMS


class LogfmtFormatter(logging.Formatter):
    """``ts=... level=... logger=... msg="..." key=value ...`` from a record and its ``kv`` extra."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update(getattr(record, "kv", {}) or {})
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        return " ".join(f"{k}={_value(v)}" for k, v in fields.items())


def _value(value: Any) -> str:
    text = str(value)
    if text and not any(ch in text for ch in ' "=\n\t'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


Redact = Callable[[str], str]


def redactor(secrets: Iterable[str]) -> Redact:
    """A function that replaces every secret value in a text with ``***``: for logs, for what is stored
    (pause reasons, source errors that echo a request) and for what is printed."""
    values = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)  # longest first: a URL before its password

    def redact(text: str) -> str:
        for secret in values:
            text = text.replace(secret, "***")
        return text

    return redact


class ScrubSecrets(logging.Filter):
    """Replaces any configured secret value in a formatted record with ``***``."""

    def __init__(self, redact: Redact) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = self._redact(record.getMessage())
        kv = {k: self._redact(str(v)) for k, v in (getattr(record, "kv", {}) or {}).items()}
        record.msg, record.args, record.kv = message, (), kv
        return True


class _Libraries(logging.Filter):
    """``OneLine`` for the records of the named libraries (and their child loggers) only."""

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__()
        self._names = tuple(names)
        self._one_line = OneLine()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(self._names):
            self._one_line.filter(record)
        return True


class OneLine(logging.Filter):
    """A library's error with a traceback (discord.py's "Attempting a reconnect", say) becomes one line
    naming the exception: paperbot's logs say why, once, and tracebacks are for -vv."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg, record.args = f"{record.getMessage()} ({type(exc).__name__}: {exc})", ()
            record.exc_info, record.exc_text = None, None
        return True


def configure(verbosity: int, redact: Redact = str) -> None:
    """``verbosity`` -1 = errors only, 0 = warnings and cycle summaries, 1+ = debug."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    handler.addFilter(ScrubSecrets(redact))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbosity > 0 else logging.WARNING)
    ours = {-1: logging.ERROR, 0: logging.WARNING}.get(verbosity, logging.DEBUG)
    for name in ("bot", "adapters"):
        logging.getLogger(name).setLevel(ours)
    logging.getLogger("bot.app").setLevel(logging.INFO if verbosity >= 0 else logging.ERROR)
    # A chat connection made or lost is one line at the default level, like the service's start and stop.
    for name in (logger for row in PLATFORMS for logger in row.loggers):
        logging.getLogger(name).setLevel(logging.INFO if verbosity == 0 else ours)
    # Third-party chatter (every HTTP request, every scheduler tick, the chat SDKs' request bodies, which
    # may carry bearer URLs) only at -vv.
    libraries = ("httpx", "httpcore", "apscheduler", "asyncio", *(name for row in PLATFORMS for name in row.libraries))
    for name in libraries:
        logging.getLogger(name).setLevel(logging.DEBUG if verbosity > 1 else logging.WARNING)
    if verbosity <= 1:
        handler.addFilter(_Libraries(libraries))
    # discord.client warns at every start that voice support is missing; paperbot has no voice.
    logging.getLogger("discord.client").setLevel(logging.DEBUG if verbosity > 1 else logging.ERROR)
