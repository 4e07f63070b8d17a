"""A worker replica for the replica, crash and benchmark runs; helpers to seed due grants and read the log.

Run as ``python -m tests.bot.worker_process --url URL --log FILE [--tick 0.2] [--lease 3]``.
It builds a container on the database at ``URL`` (the test config, the system clock) whose ``db`` connector
appends ``<op> <grant id> <pid> <unix time> <idempotency key> <until>`` to ``FILE`` (``O_APPEND``: one
``write`` per line, so concurrent processes never interleave) and runs the
:class:`bot.jobs.scheduler.Scheduler` until it is killed or ``--max-seconds`` pass (so a forgotten process
ends by itself). The connector behaves like a receiver: an operation is logged when it takes effect (after its
``--*-sleep``, so a kill during the sleep leaves a call the receiver never completed); ``--revoke-failures N``
makes each grant's first N revokes fail (logged as ``revoke_failed``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from cryptography.fernet import Fernet
from sqlalchemy import insert, text

from bot.clock import SystemClock
from bot.container import build
from bot.jobs.scheduler import Scheduler, run_due_by_db_clock
from bot.jobs.worker import LEASE
from bot.lifecycle.policy_holder import PolicyHolder, settle_memory
from bot.security.crypto import SecretBox
from integrations.base import ConnectorError, GrantResult, GrantSpec, idempotency_key
from integrations.noop import NoopConnector
from policy.validation import load_config_text
from store.db import Database
from store.models import AccessRequest, DueWork, Grant, table
from tests.bot.fixtures import CONFIG

RESOURCE = {"type": "database", "name": "search", "path": "", "source_id": "", "tags": {"env": "staging"},
            "risk": "medium"}


class LoggingConnector(NoopConnector):
    """Appends each effective grant, extend and revoke to a shared log file, with the call's idempotency key;
    may sleep before an operation takes effect (so a kill lands there) and fail the first revokes."""

    def __init__(self, inner: NoopConnector, log_path: str, revoke_sleep: float = 0.0, *,
                 grant_sleep: float = 0.0, extend_sleep: float = 0.0, revoke_failures: int = 0,
                 hold_revokes_while: str | None = None) -> None:
        super().__init__(inner.name, inner.catalog())
        self._fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.revoke_sleep = revoke_sleep
        self.grant_sleep = grant_sleep
        self.extend_sleep = extend_sleep
        self.revoke_failures = revoke_failures
        self._failed: Counter[int] = Counter()
        self.hold_revokes_while = hold_revokes_while

    def _append(self, op: str, grant_id: int, key: str, until: datetime | None = None) -> None:
        stamp = f"{until.timestamp():.6f}" if until is not None else "-"
        os.write(self._fd, f"{op} {grant_id} {os.getpid()} {time.time():.6f} {key} {stamp}\n".encode())

    def grant(self, grant: GrantSpec) -> GrantResult:
        self._append("grant", grant.grant_id, idempotency_key("grant", grant.grant_id), grant.expires_at)
        time.sleep(self.grant_sleep)  # done at the receiver; its answer is slow (a kill here loses it)
        return super().grant(grant)

    def extend(self, grant: GrantSpec, until: datetime | None) -> None:
        self._append("extend", grant.grant_id, idempotency_key("extend", grant.grant_id, until), until)
        time.sleep(self.extend_sleep)  # done at the receiver; its answer is slow (a kill here loses it)
        super().extend(grant, until)

    def revoke(self, grant: GrantSpec) -> None:
        if self.revoke_sleep:
            time.sleep(self.revoke_sleep)
        deadline = time.monotonic() + 60
        while self.hold_revokes_while and os.path.exists(self.hold_revokes_while) and time.monotonic() < deadline:
            time.sleep(0.05)  # a target that does not answer while the file exists
        key = idempotency_key("revoke", grant.grant_id)
        if self._failed[grant.grant_id] < self.revoke_failures:
            self._failed[grant.grant_id] += 1
            self._append("revoke_failed", grant.grant_id, key)
            raise ConnectorError("revoke target answered HTTP 500")
        self._append("revoke", grant.grant_id, key)
        super().revoke(grant)


@dataclass(frozen=True)
class LogLine:
    op: str
    grant_id: int
    pid: int
    at: datetime
    key: str = ""
    until: datetime | None = None


def read_log(path: str | Path) -> list[LogLine]:
    lines: list[LogLine] = []
    if not Path(path).exists():
        return lines
    for raw in Path(path).read_text().splitlines():
        op, grant_id, pid, at, key, until = raw.split()
        lines.append(LogLine(op, int(grant_id), int(pid), datetime.fromtimestamp(float(at), UTC), key,
                             None if until == "-" else datetime.fromtimestamp(float(until), UTC)))
    return lines


def counts(lines: list[LogLine], op: str) -> Counter[int]:
    return Counter(line.grant_id for line in lines if line.op == op)


def effective_calls(lines: list[LogLine], op: str) -> Counter[int]:
    """Per grant, how many distinct calls the receiver saw for ``op`` (repeats of one idempotency key are one
    call to a receiver that dedupes by it)."""
    return Counter(grant_id for grant_id, _ in {(line.grant_id, line.key) for line in lines if line.op == op})


def seed_expiring_grants(db: Database, n: int, *, first: datetime, spread: timedelta) -> dict[int, datetime]:
    """Insert ``n`` active grants (a request each) expiring from ``first`` over ``spread``, with their timers, in
    one transaction of three bulk inserts (so even 10,000 take a moment). Returns grant id -> expiry."""
    now = datetime.now(UTC)
    expiry = [first + spread * (i / max(1, n - 1)) for i in range(n)]
    with db.begin() as session:
        request_ids = list(session.scalars(insert(table(AccessRequest)).returning(
            table(AccessRequest).c.id, sort_by_parameter_order=True), [
            {"state": "active", "flow_name": "staging-auto", "flow_snapshot": {"flow": {}, "risk": "medium"},
             "requester_id": f"U{i:05d}", "requester_email": None, "grantee_ids": [f"U{i:05d}"],
             "integration": "db", "permission": "read_write", "resource_keys": ["db/database/search"],
             "duration_seconds": 3600, "justification": "seeded", "escalation_tier": 0, "created_at": now,
             "updated_at": now} for i in range(n)
        ]))
        grant_ids = list(session.scalars(insert(table(Grant)).returning(
            table(Grant).c.id, sort_by_parameter_order=True), [
            {"request_id": request_ids[i], "grantee_id": f"U{i:05d}", "grantee_email": None, "integration": "db",
             "resource_key": "db/database/search", "resource": dict(RESOURCE), "permission": "read_write",
             "permission_spec": {"risk": "medium", "roles": ["rw"]}, "state": "active", "created_at": now,
             "granted_at": now, "expires_at": expiry[i], "extensions_used": 0, "attempts": 0} for i in range(n)
        ]))
        session.execute(insert(table(DueWork)), [
            {"kind": "expire", "dedupe_key": f"expire:{grant_id}", "request_id": request_ids[i], "grant_id": grant_id,
             "due_at": expiry[i], "payload": {}, "attempts": 0} for i, grant_id in enumerate(grant_ids)
        ])
    return dict(zip(grant_ids, expiry, strict=True))


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A fresh, migrated schema on ``base_url``; yields a URL whose ``search_path`` is that schema."""
    schema = f"r_{uuid.uuid4().hex[:12]}"
    admin = Database(base_url)
    with admin.engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    url = f"{base_url}{sep}options=-csearch_path%3D{schema}"
    db = Database(url)
    db.upgrade()
    db.dispose()
    try:
        yield url
    finally:
        with admin.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def spawn(url: str, log_path: str | Path, *extra: str) -> subprocess.Popen[bytes]:
    """Start one worker replica (``--max-seconds`` bounds it even if the caller forgets to kill it)."""
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "tests.bot.worker_process", "--url", url, "--log", str(log_path), *extra]
    with open(f"{log_path}.{uuid.uuid4().hex[:8]}.out", "wb") as output:  # the child keeps its own copy
        return subprocess.Popen(cmd, cwd=root, stdout=output, stderr=subprocess.STDOUT)


def wait_started(log_path: str | Path, replicas: int, *, timeout: float = 30.0) -> None:
    """Wait until ``replicas`` workers printed that they started (imports done, scheduler ticking)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outputs = Path(log_path).parent.glob(f"{Path(log_path).name}.*.out")
        if sum("started" in path.read_text() for path in outputs) >= replicas:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{replicas} worker(s) did not start within {timeout}s")


def kill_caller(processes: list[subprocess.Popen[bytes]], log_path: str | Path, op: str,
                grant_id: int | None = None) -> subprocess.Popen[bytes]:
    """SIGKILL the replica that made the first logged ``op`` call (of ``grant_id``): no cleanup, its leases
    and half-done work left behind. Returns it, reaped."""
    line = next(line for line in read_log(log_path) if line.op == op and grant_id in (None, line.grant_id))
    victim = next(p for p in processes if p.pid == line.pid)
    victim.kill()
    victim.wait(timeout=10)
    return victim


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """Kill our worker processes (by their own handles) and reap them."""
    for process in processes:
        if process.poll() is None:
            process.kill()
    for process in processes:
        process.wait(timeout=10)


def serve(
    url: str, log_path: str, *, tick: float, lease: float, revoke_sleep: float, max_seconds: float,
    threads: int = 8, grant_sleep: float = 0.0, extend_sleep: float = 0.0, revoke_failures: int = 0,
    hold_revokes_while: str | None = None,
) -> None:
    lease_delta = timedelta(seconds=lease)
    config = load_config_text(CONFIG)
    db = Database(url)
    clock = SystemClock()
    connector = LoggingConnector(NoopConnector("db", config.integrations[0].catalog_resources()), log_path,
                                 revoke_sleep, grant_sleep=grant_sleep, extend_sleep=extend_sleep,
                                 revoke_failures=revoke_failures, hold_revokes_while=hold_revokes_while)
    container = build(db=db, policy=PolicyHolder.from_config(config),
                      secrets=SecretBox([Fernet.generate_key().decode()]), clock=clock,
                      connectors={"db": connector}, worker_threads=threads,
                      lease=lease_delta)  # a short lease so a crash is recovered fast
    settle_memory()  # as `accessbot serve` does once its policy is loaded (PolicyHolder.from_file)
    scheduler = Scheduler([run_due_by_db_clock(container.worker, db, clock)], tick_seconds=tick)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheduler.start()
    print(f"worker {os.getpid()} started", flush=True)
    try:
        stop.wait(max_seconds)
    finally:
        scheduler.shutdown(wait=True)
        db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--tick", type=float, default=0.2)
    parser.add_argument("--lease", type=float, default=LEASE.total_seconds())
    parser.add_argument("--revoke-sleep", type=float, default=0.0)
    parser.add_argument("--max-seconds", type=float, default=180.0)
    parser.add_argument("--threads", type=int, default=8, help="due-work threads per replica")
    parser.add_argument("--grant-sleep", type=float, default=0.0)
    parser.add_argument("--extend-sleep", type=float, default=0.0)
    parser.add_argument("--revoke-failures", type=int, default=0, help="each grant's first N revokes fail")
    parser.add_argument("--hold-revokes-while", help="revokes do not answer while this file exists")
    args = parser.parse_args(argv)
    serve(args.url, args.log, tick=args.tick, lease=args.lease, revoke_sleep=args.revoke_sleep,
          max_seconds=args.max_seconds, threads=args.threads, grant_sleep=args.grant_sleep,
          extend_sleep=args.extend_sleep, revoke_failures=args.revoke_failures,
          hold_revokes_while=args.hold_revokes_while)
    return 0


if __name__ == "__main__":
    sys.exit(main())
