"""Benchmark expiry: N grants expiring within one second, cleared by one (and two) worker processes.

Run by hand from the repository root: ``python bench/bench_expiry.py [--grants 10000] [--spread 1]
[--workers 1,2] [--threads 8] [--url URL | --sqlite-only]``. Not collected by pytest. ``--url`` (default
``$ACCESSBOT_TEST_POSTGRES_URL``) is a PostgreSQL server: each run gets a fresh schema; SQLite runs on a file
in a temporary directory. Both are measured unless ``--sqlite-only`` (or no PostgreSQL URL).

Each run starts the workers (``tests/bot/worker_process.py``, tick 0.2 s, a no-op connector that logs every
revoke), waits until they are up, inserts N active grants whose expiries fall within ``--spread`` seconds
starting one second after the insert commits, and measures until every one of them has ended (expired,
revoked through the connector, audited, notice queued). Printed per run: the time from the last expiry until
all had ended ("cleared after"), the whole run from the first expiry, and the lateness of each revoke behind
its grant's expiry (p50, p99, max). It also checks that every grant was revoked exactly once, and prints the CPU
time the worker processes used from the first expiry to the end (Linux ``/proc``): on a shared machine the
wall-clock figures follow the other load, the CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(Grant).where(Grant.state != "expired")) or 0


@dataclass(frozen=True)
class Result:
    cleared_after: float  # seconds from the last expiry until every grant had ended
    total: float  # seconds from the first expiry until every grant had ended
    p50: float
    p99: float
    worst: float
    anomalies: int  # missed + repeated revokes
    worker_cpu: float | None = None  # CPU seconds the workers used from the first expiry on (None: no /proc)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (Linux), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(base_url: str | None, grants: int, workers: int, threads: int, spread: float, timeout: float) -> Result:
    with tempfile.TemporaryDirectory() as tmp, fresh_database(base_url, Path(tmp)) as url:
        log = Path(tmp) / "connector.log"
        db = Database(url)
        processes = []
        try:
            processes = [spawn(url, log, "--tick", "0.2", "--threads", str(threads), "--max-seconds",
                               str(timeout + 60)) for _ in range(workers)]
            wait_started(log, workers)
            # the first expiry falls after the insert commits, so the lag measured is the bot's alone
            first = datetime.now(UTC) + timedelta(seconds=2 + grants * 0.0004)
            expiries = seed_expiring_grants(db, grants, first=first, spread=timedelta(seconds=spread))
            if datetime.now(UTC) > first:
                print(f"  (seeding ended {(datetime.now(UTC) - first).total_seconds():.1f} s after the first expiry)")
            last = max(expiries.values())
            time.sleep(max(0.0, (first - datetime.now(UTC)).total_seconds()))
            cpu_before = [cpu_seconds(p.pid) for p in processes]
            while live(db) and datetime.now(UTC) - last < timedelta(seconds=timeout):
                time.sleep(0.02)
            ended = datetime.now(UTC)
            cpu_after = [cpu_seconds(p.pid) for p in processes]
            left = live(db)
        finally:
            stop_all(processes)
            db.dispose()
        if left:
            raise SystemExit(f"{left} grants still live {timeout:.0f}s after the last expiry ({workers} worker(s))")
        lines = [line for line in read_log(log) if line.op == "revoke"]
        revokes = counts(lines, "revoke")
        firsts: dict[int, datetime] = {}
        for line in lines:
            firsts.setdefault(line.grant_id, line.at)
        lateness = [(firsts[g] - expiries[g]).total_seconds() for g in expiries if g in firsts]
        used = [a - b for a, b in zip(cpu_after, cpu_before, strict=True) if a is not None and b is not None]
        return Result((ended - last).total_seconds(), (ended - first).total_seconds(), percentile(lateness, 0.5),
                      percentile(lateness, 0.99), max(lateness),
                      sum(n - 1 for n in revokes.values()) + (grants - len(revokes)),
                      sum(used) if len(used) == len(processes) else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grants", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=1.0, help="seconds over which the expiries fall")
    parser.add_argument("--workers", default="1,2", help="comma-separated replica counts to measure")
    parser.add_argument("--threads", type=int, default=8, help="due-work threads per replica")
    parser.add_argument("--url", default=os.environ.get("ACCESSBOT_TEST_POSTGRES_URL"))
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    backends: list[tuple[str, str | None]] = [("SQLite", None)]
    if args.url and not args.sqlite_only:
        backends.append(("PostgreSQL", args.url))
    print(f"{args.grants} grants expiring within {args.spread:g} s, no-op connector, tick 0.2 s, "
          f"{args.threads} threads per replica (target: cleared <= 5 s with one replica)")
    print(f"{'database':<11} {'replicas':>8} {'cleared after':>14} {'total':>8} {'per s':>8} "
          f"{'lag p50':>8} {'p99':>7} {'max':>7}  missed/repeated  worker CPU")
    for name, url in backends:
        for workers in (int(w) for w in args.workers.split(",")):
            r = run(url, args.grants, workers, args.threads, args.spread, args.timeout)
            cpu = f"{r.worker_cpu:.2f} s" if r.worker_cpu is not None else "-"
            print(f"{name:<11} {workers:>8} {r.cleared_after:>12.2f} s {r.total:>6.2f} s "
                  f"{args.grants / r.total:>8.0f} {r.p50:>6.2f} s {r.p99:>5.2f} s {r.worst:>5.2f} s  "
                  f"{r.anomalies:>15}  {cpu}")


if __name__ == "__main__":
    main()
