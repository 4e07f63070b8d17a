"""The configuration in force: compiled once per load, swapped atomically on reload (SIGHUP, file change)."""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import threading
from collections.abc import Callable
from functools import cache
from typing import Any, cast

from policy.catalog import Catalog
from policy.config import Config
from policy.flows import CompiledPolicy
from policy.resources import Resource
from policy.validation import ConfigError, collector_paused, load_config_file

log = logging.getLogger(__name__)


class PolicyHolder:
    """Holds the current :class:`CompiledPolicy`. A new file that does not validate is refused."""

    def __init__(self, policy: CompiledPolicy, path: str | None = None, *, mtime: float | None = None) -> None:
        """``mtime``: the file's modification time when it was read (default: now's), for :meth:`reload_if_changed`."""
        self._policy = policy
        self._path = path
        self._mtime = mtime if mtime is not None else _mtime(path)
        self._lock = threading.Lock()
        self.on_refused: list[Callable[[ConfigError], None]] = []
        self.on_reloaded: list[Callable[[], None]] = []
        self._reload_requested = threading.Event()
        self._discovered: dict[str, list[Resource]] = {}

    def _compile(self, config: Config) -> CompiledPolicy:
        # What did not change (an integration's type-ahead index) is taken over from the policy in force.
        with collector_paused():
            return CompiledPolicy(config, Catalog(config, self._discovered), previous=self._policy)

    def set_discovered(self, discovered: dict[str, list[Resource]]) -> None:
        """Resources the connectors discovered (``discover: true``); the policy is recompiled with them.

        The same resources as before (nothing to discover, or a discovery that found what it found last time)
        change nothing: the policy in force already has them, and is kept.
        """
        with self._lock:
            found = {name: list(resources) for name, resources in discovered.items()}
            if found == self._discovered:
                return
            self._discovered = found
            self._policy = self._compile(self._policy.config)
        settle_memory()

    @classmethod
    def from_file(cls, path: str) -> PolicyHolder:
        mtime = _mtime(path)  # before reading: a change while it is read is seen by the next check
        holder = cls.from_config(load_config_file(path), path, mtime=mtime)
        settle_memory()
        return holder

    @classmethod
    def from_config(cls, config: Config, path: str | None = None, *, mtime: float | None = None) -> PolicyHolder:
        """The holder of an already loaded config (``path``: the file it was read from, reloaded from there).

        A long-lived holder then calls :func:`settle_memory`, as :meth:`from_file` does.
        """
        with collector_paused():
            policy = CompiledPolicy(config)
        return cls(policy, path, mtime=mtime)

    @property
    def current(self) -> CompiledPolicy:
        return self._policy

    def replace(self, config: Config) -> None:
        compiled = self._compile(config)
        with self._lock:
            self._policy = compiled

    def reload(self) -> bool:
        """Load the file again; True when the new config is in force, False when it was refused."""
        if not self._path:
            return False
        mtime = _mtime(self._path)
        try:
            compiled = self._compile(load_config_file(self._path))
        except ConfigError as exc:
            log.error("config reload refused; the previous configuration stays in force:\n%s", exc)
            for callback in self.on_refused:
                callback(exc)
            return False
        with self._lock:
            self._policy = compiled
            self._mtime = mtime
        settle_memory()
        log.info("configuration reloaded from %s (%d flows)", self._path, len(compiled.flows))
        for after in self.on_reloaded:
            try:
                after()
            except Exception:  # noqa: BLE001 — the new config is in force; a follow-up failing is only logged
                log.exception("after-reload step %s failed", getattr(after, "__qualname__", after))
        return True

    def request_reload(self) -> None:
        """Ask for a reload at the next :meth:`reload_if_changed` (safe to call from a signal handler)."""
        self._reload_requested.set()

    def reload_if_changed(self) -> bool:
        """Reload when asked to (SIGHUP) or when the file changed; a scheduler task."""
        if not self._path or not os.path.exists(self._path):
            return False
        mtime = os.path.getmtime(self._path)
        if mtime == self._mtime and not self._reload_requested.is_set():
            return False
        self._reload_requested.clear()
        self._mtime = mtime
        return self.reload()


def _mtime(path: str | None) -> float | None:
    return os.path.getmtime(path) if path and os.path.exists(path) else None


def settle_memory() -> None:
    """After a policy is put in force: collect what the load left behind, then move the (long-lived) policy out
    of the collector's way (``gc.freeze``), so later collections do not walk its millions of objects — without
    this, a decision's p99 is a garbage-collection pause. Unfrozen first, so a replaced policy can be freed.
    Last, on glibc, the C heap's free pages go back to the system (``malloc_trim``; a few MB after a load)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _trim_heap()


def settle_built() -> None:
    """After long-lived structures are built beside the policy in force (the approver candidates of every
    directory user, the picker's ids: :func:`bot.slack.app.warm_up`): move them out of the collector's way too
    (measured on the large set: otherwise a full collection walks them, a 60 ms pause of every thread a few
    times a minute under load) and hand the heap's free pages back. No collection first: that is the pause."""
    gc.freeze()
    _trim_heap()


def _trim_heap() -> None:
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (by default up to 8 per core, one per thread that allocates at once). The serving
    bot runs hundreds of mostly idle listener threads; each arena keeps its own free pages, ~7 MB of RSS in all
    on the large set for no measurable speed. Call before threads start; True when the cap was set (glibc only;
    the ``MALLOC_ARENA_MAX`` environment variable, when set, is the operator's choice and wins)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))


def _libc_function(name: str) -> Any:
    try:
        return getattr(ctypes.CDLL(None), name, None)  # the symbols of this process, the C library's too
    except OSError:
        return None


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    trim = _libc_function("malloc_trim")
    if trim is None:  # not glibc (musl, macOS): nothing to trim
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return cast("Callable[[int], int]", trim)
