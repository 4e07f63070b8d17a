"""Logging for ``accessbot serve``: level and format from settings, context fields, and the noise taken out.

``ACCESSBOT_LOG_FORMAT=json`` writes one JSON object per line (python-json-logger) with ``time``, ``level``,
``logger``, ``message`` and, where known, the context of what the bot is doing: ``delivery_id`` (one Slack
delivery), ``user_id`` (who clicked or typed), ``action`` (the command, button, modal or event) and
``request_id`` (the access request). ``text`` writes the same as one readable line.

The context lives in a :class:`contextvars.ContextVar`: the Bolt app opens a scope per delivery and its middleware
binds the fields once the signature is checked (:mod:`bot.slack.observed`); every line logged meanwhile carries them.

At INFO and above APScheduler's per-tick lines ("Running job …", "executed successfully", a tick skipped while
the previous one runs) and waitress's start line are dropped, and so is Bolt's "`token` will be unused" warning
(the bot hands Bolt its own client on purpose); at DEBUG the scheduler's ticks appear. waitress's warning for
each HTTP request that waits for a worker thread is said at most once a minute (:class:`QueueDepthSummary`).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["text", "json"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
CONTEXT_FIELDS = ("delivery_id", "user_id", "action", "request_id")

_context: ContextVar[Mapping[str, str]] = ContextVar("accessbot_log_context", default=MappingProxyType({}))

# below DEBUG: the floor of the libraries the bot drives. APScheduler logs every tick at INFO, and a tick skipped
# or run late at WARNING, which is by design here (one tick at a time, coalesced: bot.scheduler); /healthz and
# accessbot_scheduler_idle_seconds tell a stuck scheduler. waitress logs its start at INFO.
_QUIET_BELOW_DEBUG = {"apscheduler": logging.ERROR, "waitress": logging.WARNING}
# Bolt logs each refused signature at INFO with the whole body (bot.slack.observed.SignatureRefusals says it briefly)
_ALWAYS_QUIET = {"alembic": logging.WARNING, "slack_bolt.RequestVerification": logging.WARNING}
_DROPPED_MESSAGES = ("As you gave `client` as well, `token` will be unused.",)


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Every line logged inside the block (in this thread or task) carries ``fields`` (None values are left out)."""
    merged = {**_context.get(), **{k: str(v) for k, v in fields.items() if v is not None and v != ""}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: object) -> None:
    """Add ``fields`` to the innermost :func:`log_context` block (outside one, nothing happens)."""
    current = _context.get()
    if isinstance(current, dict):
        current.update({k: str(v) for k, v in fields.items() if v is not None and v != ""})


def current_context() -> Mapping[str, str]:
    return _context.get()


class ContextFilter(logging.Filter):
    """Copies the bound context onto each record (as attributes, which the JSON formatter emits as fields)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class Quieten(logging.Filter):
    """On the handler (libraries reset their loggers' levels, e.g. Bolt copies the root's when it builds one):
    drops records of the ``floors`` loggers (and their children) below their floor, and the ``messages``."""

    def __init__(self, floors: Mapping[str, int], messages: tuple[str, ...]) -> None:
        super().__init__()
        self.floors = dict(floors)
        self.messages = frozenset(messages)

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        while name:
            floor = self.floors.get(name)
            if floor is not None:
                return record.levelno >= floor and record.getMessage() not in self.messages
            name = name.rpartition(".")[0]
        return record.getMessage() not in self.messages


class QueueDepthSummary(logging.Filter):
    """waitress warns "Task queue depth is N" for every HTTP request that has to wait for a free worker thread:
    fifty people clicking at once write hundreds of WARNING lines, and an alert on warnings fires for each. Kept:
    the first, then at most one every ``every`` seconds, with the longest wait queue since the line before."""

    MESSAGE = "Task queue depth is %d"

    def __init__(self, every: float = 60.0, monotonic: Any = time.monotonic) -> None:
        super().__init__()
        self.every = every
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._last: float | None = None
        self._deepest = 0
        self._times = 0

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name != "waitress.queue" or record.msg != self.MESSAGE or not isinstance(args, tuple) or not (
                args and isinstance(args[0], int)):
            return True
        depth = args[0]
        now = self.monotonic()
        with self._lock:
            self._deepest, self._times = max(self._deepest, depth), self._times + 1
            if self._last is not None and now - self._last < self.every:
                return False
            deepest, times, self._last, self._deepest, self._times = self._deepest, self._times, now, 0, 0
        record.msg = ("HTTP requests are waiting for a free worker thread: %d now; at most %d, %d time(s), since "
                      "the last such line (said at most once a minute)")
        record.args = (depth, deepest, times)
        return True


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [user_id=… action=…]``; a traceback follows on its own lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 — logging's naming
        line = super().formatMessage(record)
        fields = [f"{key}={getattr(record, key)}" for key in CONTEXT_FIELDS if hasattr(record, key)]
        return f"{line} [{' '.join(fields)}]" if fields else line


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


def configure(level: LogLevel = "INFO", fmt: LogFormat = "text", *, stream: TextIO | None = None) -> None:
    """Set up the root logger once, in the entry point (replaces any handler set up before)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter() if fmt == "json" else TextFormatter())
    floors = dict(_ALWAYS_QUIET)
    if logging.getLevelName(level) > logging.DEBUG:
        floors.update(_QUIET_BELOW_DEBUG)
    handler.addFilter(Quieten(floors, _DROPPED_MESSAGES))
    handler.addFilter(QueueDepthSummary())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


class RateLimitedLog:
    """Logs at most one line per ``every`` seconds; the next line says how many were held back meanwhile."""

    def __init__(self, logger: logging.Logger, every: float = 60.0, level: int = logging.WARNING) -> None:
        self.logger = logger
        self.every = every
        self.level = level
        self._lock = threading.Lock()
        self._last: float | None = None
        self._held_back = 0

    def log(self, message: str, *args: Any) -> bool:
        """Returns True when the line was written."""
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last < self.every:
                self._held_back += 1
                return False
            held_back, self._held_back, self._last = self._held_back, 0, now
        if held_back:
            message += f" (and {held_back} more since the last such line)"
        self.logger.log(self.level, message, *args)
        return True
