"""A worker replica for the replica, crash and benchmark runs; helpers to seed due grants and read the log.

Run as ``python -m tests.bot.worker_process --url URL --log FILE [--tick 0.2] [--lease 3]``.
It builds a container on the database at ``URL`` (the test config, the system clock) whose ``db`` connector
appends ``<op> <grant id> <pid> <unix time>`` to ``FILE`` (``O_APPEND``: one ``write`` per line, so concurrent
processes never interleave) and runs the :class:`bot.jobs.scheduler.Scheduler` until it is killed or
``--max-seconds`` pass (so a forgotten process ends by itself).
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
from sqlalchemy import text

from bot.clock import SystemClock
from bot.container import build
from bot.jobs.scheduler import Scheduler, run_due_by_db_clock
from bot.lifecycle.policy_holder import PolicyHolder
from bot.security.crypto import SecretBox
from integrations.base import GrantResult, GrantSpec
from integrations.noop import NoopConnector
from policy.validation import load_config_text
from store.db import Database
from store.models import AccessRequest, DueWork, Grant
from tests.bot.fixtures import CONFIG

RESOURCE = {"type": "database", "name": "search", "path": "", "source_id": "", "tags": {"env": "staging"},
            "risk": "medium"}


class LoggingConnector(NoopConnector):
    """Appends each grant and revoke to a shared log file; may sleep in revoke (so a kill lands there)."""

    def __init__(self, inner: NoopConnector, log_path: str, revoke_sleep: float = 0.0) -> None:
        super().__init__(inner.name, inner.catalog())
        self._fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.revoke_sleep = revoke_sleep

    def _append(self, op: str, grant_id: int) -> None:
        os.write(self._fd, f"{op} {grant_id} {os.getpid()} {time.time():.6f}\n".encode())

    def grant(self, grant: GrantSpec) -> GrantResult:
        self._append("grant", grant.grant_id)
        return super().grant(grant)

    def revoke(self, grant: GrantSpec) -> None:
        if self.revoke_sleep:
            time.sleep(self.revoke_sleep)
        self._append("revoke", grant.grant_id)
        super().revoke(grant)


@dataclass(frozen=True)
class LogLine:
    op: str
    grant_id: int
    pid: int
    at: datetime


def read_log(path: str | Path) -> list[LogLine]:
    lines = []
    for raw in Path(path).read_text().splitlines():
        op, grant_id, pid, at = raw.split()
        lines.append(LogLine(op, int(grant_id), int(pid), datetime.fromtimestamp(float(at), UTC)))
    return lines


def counts(lines: list[LogLine], op: str) -> Counter[int]:
    return Counter(line.grant_id for line in lines if line.op == op)


def seed_expiring_grants(db: Database, n: int, *, first: datetime, spread: timedelta) -> dict[int, datetime]:
    """Insert ``n`` active grants (a request each) expiring from ``first`` over ``spread``, with timers."""
    now = datetime.now(UTC)
    expiries: dict[int, datetime] = {}
    with db.begin() as session:
        grants = []
        for i in range(n):
            expires_at = first + spread * (i / max(1, n - 1))
            request = AccessRequest(
                state="active", flow_name="staging-auto", flow_snapshot={"flow": {}, "risk": "medium"},
                requester_id=f"U{i:05d}", requester_email=None, grantee_ids=[f"U{i:05d}"], integration="db",
                permission="read_write", resource_keys=["db/database/search"], duration_seconds=3600,
                justification="seeded", escalation_tier=0, created_at=now, updated_at=now,
            )
            grant = Grant(
                request=request, grantee_id=f"U{i:05d}", grantee_email=None, integration="db",
                resource_key="db/database/search", resource=dict(RESOURCE), permission="read_write",
                permission_spec={"risk": "medium", "roles": ["rw"]}, state="active", created_at=now,
                granted_at=now, expires_at=expires_at, extensions_used=0, attempts=0,
            )
            session.add(request)
            grants.append(grant)
        session.flush()
        for grant in grants:
            assert grant.expires_at is not None
            session.add(DueWork(kind="expire", dedupe_key=f"expire:{grant.id}", request_id=grant.request_id,
                                grant_id=grant.id, due_at=grant.expires_at, payload={}, attempts=0))
            expiries[grant.id] = grant.expires_at
    return expiries


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


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """Kill our worker processes (by their own handles) and reap them."""
    for process in processes:
        if process.poll() is None:
            process.kill()
    for process in processes:
        process.wait(timeout=10)


def serve(
    url: str, log_path: str, *, tick: float, lease: float, revoke_sleep: float, max_seconds: float,
    threads: int = 8,
) -> None:
    lease_delta = timedelta(seconds=lease)
    config = load_config_text(CONFIG)
    db = Database(url)
    clock = SystemClock()
    connector = LoggingConnector(NoopConnector("db", config.integrations[0].catalog_resources()), log_path,
                                 revoke_sleep)
    container = build(db=db, policy=PolicyHolder.from_config(config),
                      secrets=SecretBox([Fernet.generate_key().decode()]), clock=clock,
                      connectors={"db": connector}, worker_threads=threads,
                      lease=lease_delta)  # a short lease so a crash is recovered fast
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
    parser.add_argument("--lease", type=float, default=120.0)
    parser.add_argument("--revoke-sleep", type=float, default=0.0)
    parser.add_argument("--max-seconds", type=float, default=180.0)
    parser.add_argument("--threads", type=int, default=8, help="due-work threads per replica")
    args = parser.parse_args(argv)
    serve(args.url, args.log, tick=args.tick, lease=args.lease, revoke_sleep=args.revoke_sleep,
          max_seconds=args.max_seconds, threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
