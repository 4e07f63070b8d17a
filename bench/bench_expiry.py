"""Benchmark expiry: how long N due expiries take to process with one and with two worker processes.

Run by hand from the repository root: ``python bench/bench_expiry.py [--grants N] [--url URL]``. Not collected
by pytest. ``--url`` (default ``$ACCESSBOT_TEST_POSTGRES_URL``) is a PostgreSQL server: each run gets a fresh
schema. Without it the benchmark runs on a SQLite file (writers are serialized there).

Each run starts the workers (``tests/bot/worker_process.py``, tick 0.2 s), waits until they are up, inserts N
active grants that are already due, and measures the time until every one of them has ended (expired and
revoked through the connector). It also checks that every grant was revoked exactly once.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select  # noqa: E402

from store.db import Database  # noqa: E402
from store.models import Grant  # noqa: E402
from tests.bot.worker_process import (  # noqa: E402
    counts,
    postgres_schema,
    read_log,
    seed_expiring_grants,
    spawn,
    stop_all,
    wait_started,
)


@contextmanager
def fresh_database(base_url: str | None, workdir: Path) -> Iterator[str]:
    if base_url:
        with postgres_schema(base_url) as url:
            yield url
        return
    url = f"sqlite:///{workdir}/bench.db"
    db = Database(url)
    db.upgrade()
    db.dispose()
    yield url


def live(db: Database) -> int:
    with db.begin() as session:
        return session.scalar(select(func.count()).select_from(Grant).where(Grant.state != "expired")) or 0


def run(base_url: str | None, grants: int, workers: int, timeout: float) -> tuple[float, int]:
    """Seconds until ``grants`` due expiries are done by ``workers`` processes; missed + repeated revokes."""
    with tempfile.TemporaryDirectory() as tmp, fresh_database(base_url, Path(tmp)) as url:
        log = Path(tmp) / "connector.log"
        db = Database(url)
        processes = []
        try:
            processes = [spawn(url, log, "--tick", "0.2", "--max-seconds", str(timeout + 30))
                         for _ in range(workers)]
            wait_started(log, workers)
            seed_expiring_grants(db, grants, first=datetime.now(UTC) - timedelta(seconds=1),
                                 spread=timedelta(0))
            started = time.monotonic()
            while live(db) and time.monotonic() - started < timeout:
                time.sleep(0.05)
            elapsed = time.monotonic() - started
            left = live(db)
        finally:
            stop_all(processes)
            db.dispose()
        if left:
            raise SystemExit(f"{left} grants still live after {timeout:.0f}s with {workers} worker(s)")
        revokes = counts(read_log(log), "revoke")
        return elapsed, sum(n - 1 for n in revokes.values()) + (grants - len(revokes))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--grants", type=int, default=1000)
    parser.add_argument("--url", default=os.environ.get("ACCESSBOT_TEST_POSTGRES_URL"))
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    backend = "PostgreSQL" if args.url else "SQLite"
    print(f"{args.grants} due expiries on {backend} (each: expire, revoke via connector, audit, notify)")
    for workers in (1, 2):
        elapsed, anomalies = run(args.url, args.grants, workers, args.timeout)
        print(f"  {workers} worker(s): {elapsed:7.2f} s  {args.grants / elapsed:7.1f} expiries/s  "
              f"{1000 * elapsed / args.grants:6.1f} ms each  missed-or-duplicated revokes: {anomalies}")


if __name__ == "__main__":
    main()
