"""Engine and sessions: SQLite (WAL, foreign keys, serialized writers, files 0600) or PostgreSQL; Alembic upgrades.

Two kinds of transaction, chosen by the caller:

- :meth:`Database.begin` — a write. On SQLite it starts with ``BEGIN IMMEDIATE``: the write lock is taken up
  front, so read-modify-write sequences (claiming due work, recording a vote) are serialized the way
  ``SELECT … FOR UPDATE`` serializes them on PostgreSQL, and never fail half-way with ``SQLITE_BUSY``.
- :meth:`Database.read` — a read. On SQLite a deferred ``BEGIN``: a snapshot that never waits for the writer
  (WAL) and never holds up a write. A flush inside it is refused (:class:`ReadOnlyTransaction`), and it is
  rolled back at the end; on PostgreSQL it is a ``READ ONLY`` transaction.

On a SQLite file the writers of one process also take turns on a lock of their own before ``BEGIN IMMEDIATE``:
SQLite's busy handler makes a waiting writer sleep and poll (up to 100 ms a turn, and a writer can lose every
turn for the whole busy timeout), while a waiter on the process's lock starts the moment the writer before it
commits. Writers of other processes (a second replica on the same file) still meet at SQLite's lock.

Connections are pooled: a file SQLite database keeps a small pool (the PRAGMAs run once per connection, when
it is opened, not once per transaction); PostgreSQL gets a pool sized by ``pool_size`` (default
:data:`POSTGRES_POOL`, ``ACCESSBOT_DATABASE_POOL_SIZE`` for ``serve``). ``:memory:`` SQLite keeps SQLAlchemy's
one-connection-per-thread pool (each new connection would be a new, empty database).

Background work (due work, the outbox, a listener's work after its ack: :func:`background_work`) takes turns:
at most ``background_turns`` of its transactions run at once per :class:`Database`, while a transaction Slack
is waiting for (a modal's submission, an event's first delivery) never waits for a turn. Measured with the
bench's 50 people approving at once on 2 CPUs and PostgreSQL: Approve p99 19–21 ms with 2 turns, 30–42 ms with
4, 230–340 ms with none (up to 30 transactions at once, sharing one interpreter lock and the CPUs with the
database). SQLite's writers already took turns (below).

The SQLite file and its ``-wal`` and ``-shm`` files are readable by their owner only (0600): they hold the audit
trail and encrypted secrets. SQLite gives the WAL files the database file's mode, and every new connection
tightens any that an older version (or a hand copy) left wider.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

SQLITE_POOL = 8  # connections kept open per process: the due-work threads, the outbox, the HTTP threads
POSTGRES_POOL = 10
BACKGROUND_TURNS = 2  # background transactions at once per Database (see background_work)
READ_OPTION = "accessbot_read"  # execution option of the read engine: a deferred BEGIN on SQLite


class ReadOnlyTransaction(RuntimeError):
    """A write was attempted inside :meth:`Database.read` (a programming error: use ``begin()``)."""


def _is_memory(url: str) -> bool:
    return url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url


def make_engine(url: str, *, echo: bool = False, pool_size: int | None = None) -> Engine:
    """An engine for ``url``: pooled; SQLite gets WAL, foreign keys, a busy timeout and ``BEGIN IMMEDIATE``
    for writes (a deferred ``BEGIN`` for connections carrying the :data:`READ_OPTION` execution option)."""
    if url.startswith("sqlite"):
        database_file = sqlite_file(url)
        if database_file is not None:
            restrict_sqlite_files(database_file, create=True)
        pool: dict[str, Any] = {}
        if not _is_memory(url):
            size = pool_size or SQLITE_POOL
            pool = {"poolclass": QueuePool, "pool_size": size, "max_overflow": 2 * size, "pool_timeout": 60}
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False}, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            if database_file is not None:
                restrict_sqlite_files(database_file)

        @event.listens_for(engine, "begin")
        def _begin(connection: Any) -> None:
            read = connection.get_execution_options().get(READ_OPTION, False)
            connection.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

        return engine
    size = pool_size or POSTGRES_POOL
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=size, max_overflow=2 * size)


def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadOnlyTransaction("a write inside Database.read(); open the transaction with Database.begin()")


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names, or None for an in-memory database (and for any other kind of database)."""
    if not url.startswith("sqlite"):
        return None
    parsed = make_url(url)
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    return Path(database)


def restrict_sqlite_files(path: Path, *, create: bool = False) -> None:
    """Make the database file (created empty, 0600, when missing and ``create``) and its WAL files 0600."""
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if file.stat().st_mode & 0o777 != 0o600:
                file.chmod(0o600)
        except FileNotFoundError:
            continue


_thread = threading.local()


def background_work(on: bool = True) -> None:
    """Mark what the calling thread does from now on as background work (``on``) or as work someone waits for.

    Background work is what runs after Slack has its answer: due work, the outbox, a listener's work after its
    ack. Its transactions take turns, at most ``background_turns`` at once per :class:`Database`, while the
    transactions of a thread not marked (an HTTP thread, a listener before its ack: a modal's submission, an
    event's first delivery) never wait for a turn. So a burst of grants, outbox sends and App Home republishes
    runs a couple of transactions at a time instead of thirty that share one interpreter lock and the machine's
    CPUs with the database, and an answer Slack waits for is not queued behind them."""
    _thread.background = on


def is_background() -> bool:
    """Whether the calling thread is marked as doing background work (:func:`background_work`)."""
    return bool(getattr(_thread, "background", False))


@contextmanager
def foreground() -> Iterator[None]:
    """Work someone waits for, in a thread otherwise marked as background: a listener that must open a modal
    before its trigger expires (3 s after the click) reads what it shows without waiting for a turn."""
    marked = is_background()
    background_work(False)
    try:
        yield
    finally:
        background_work(marked)


def background_thread() -> None:
    """A thread pool's ``initializer`` for pools that run only background work."""
    background_work(True)


class Database:
    """The engine plus session factories. Services open ``with db.begin() as session:`` to write and
    ``with db.read() as session:`` to read."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int | None = None,
                 background_turns: int = BACKGROUND_TURNS) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo, pool_size=pool_size)
        self._turns = threading.BoundedSemaphore(background_turns)
        self._turn = threading.local()  # this thread holds a turn (a transaction inside it needs no other)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        options: dict[str, Any] = {READ_OPTION: True}
        if self.engine.dialect.name == "postgresql":
            options["postgresql_readonly"] = True
        self._reader = sessionmaker(self.engine.execution_options(**options), expire_on_commit=False,
                                    autoflush=False)
        event.listen(self._reader, "before_flush", _refuse_flush)
        # one writer at a time in this process on a SQLite file (see the module's docstring); re-entrant, so a
        # write opened inside another on the same thread meets SQLite's own lock, as it did before
        self._writer = threading.RLock() if sqlite_file(url) is not None else None

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on an exception."""
        with self._taking_turns():
            if self._writer is None:
                with self.sessions.begin() as session:
                    yield session
                return
            with self._writer, self.sessions.begin() as session:
                yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """One read transaction (a consistent snapshot): rolled back at the end; writes are refused."""
        with self._taking_turns(), self._reader() as session:  # closing the session rolls the transaction back
            session.begin()
            yield session
            _refuse_flush(session, None, None)

    @contextmanager
    def _taking_turns(self) -> Iterator[None]:
        """A turn for background work (:func:`background_work`); nothing for other work, or when this thread
        already holds one (a transaction opened inside another never waits for itself)."""
        if not is_background() or getattr(self._turn, "held", False):
            yield
            return
        with self._turns:
            self._turn.held = True
            try:
                yield
            finally:
                self._turn.held = False

    def upgrade(self, revision: str = "head") -> None:
        """Apply the Alembic migrations (idempotent)."""
        with self.engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", "store:migrations")
    return config
