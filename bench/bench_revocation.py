"""Benchmark revocation lag: how late access really ends (the receiver's revoke behind the grant's expiry),
steadily, through a crash, and through transient revoke failures.

Run by hand from the repository root: ``python bench/bench_revocation.py [--grants 300] [--url URL]``. Not
collected by pytest. SQLite always; PostgreSQL too when ``--url`` (default ``$ACCESSBOT_TEST_POSTGRES_URL``)
is set. Worker processes as in the tests (``tests/bot/worker_process.py``: tick 0.2 s, lease 2 s, a logging
no-op connector). Scenarios, each with N grants expiring over three seconds:

- ``steady``: two replicas, nothing goes wrong;
- ``crash``: two replicas; the one that makes the first revoke call is killed (SIGKILL) at once and restarted;
  its claimed work is taken over when its leases lapse;
- ``fail 1x`` / ``fail 3x``: one replica whose revoke target fails each grant's first 1 (3) calls (HTTP 500):
  retried after the work's own backoff (0.5–1 s, then 1–2 s, 2–4 s), never after a lease.

Printed per scenario: lag p50, p99 and max, and the effective revoke calls per grant (distinct idempotency
keys: always 1).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_expiry import fresh_database, live, percentile  # noqa: E402
from store.db import Database  # noqa: E402
from tests.bot.worker_process import (  # noqa: E402
    effective_calls,
    kill_caller,
    read_log,
    seed_expiring_grants,
    spawn,
    stop_all,
    wait_started,
)

WORKER = ("--tick", "0.2", "--lease", "2", "--threads", "8", "--max-seconds", "120")
SCENARIOS = {"steady": (2, ()), "crash": (2, ()), "fail 1x": (1, ("--revoke-failures", "1")),
             "fail 3x": (1, ("--revoke-failures", "3"))}


def run(base_url: str | None, scenario: str, grants: int) -> tuple[float, float, float, int]:
    replicas, extra = SCENARIOS[scenario]
    with tempfile.TemporaryDirectory() as tmp, fresh_database(base_url, Path(tmp)) as url:
        log = Path(tmp) / "connector.log"
        db = Database(url)
        processes = []
        try:
            processes = [spawn(url, log, *WORKER, *extra) for _ in range(replicas)]
            wait_started(log, replicas)
            first = datetime.now(UTC) + timedelta(seconds=1)
            expiries = seed_expiring_grants(db, grants, first=first, spread=timedelta(seconds=3))
            if scenario == "crash":
                deadline = time.monotonic() + 20
                while not any(line.op == "revoke" for line in read_log(log)) and time.monotonic() < deadline:
                    time.sleep(0.01)
                kill_caller(processes, log, "revoke")
                processes.append(spawn(url, log, *WORKER))
            deadline = time.monotonic() + 60
            while live(db) and time.monotonic() < deadline:
                time.sleep(0.05)
            left = live(db)
        finally:
            stop_all(processes)
            db.dispose()
        if left:
            raise SystemExit(f"{scenario}: {left} grants still live after 60 s")
        lines = read_log(log)
        firsts: dict[int, datetime] = {}
        for line in lines:
            if line.op == "revoke":
                firsts.setdefault(line.grant_id, line.at)
        lag = [(firsts[g] - expiries[g]).total_seconds() for g in expiries]
        effective = effective_calls(lines, "revoke")
        return percentile(lag, 0.5), percentile(lag, 0.99), max(lag), max(effective.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grants", type=int, default=300)
    parser.add_argument("--url", default=os.environ.get("ACCESSBOT_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    backends: list[tuple[str, str | None]] = [("SQLite", None)] + ([("PostgreSQL", args.url)] if args.url else [])
    print(f"revocation lag: {args.grants} grants expiring over 3 s; lease 2 s, tick 0.2 s")
    print(f"{'database':<11} {'scenario':<8} {'lag p50':>8} {'p99':>7} {'max':>7}  effective revokes per grant")
    for name, url in backends:
        for scenario in SCENARIOS:
            p50, p99, worst, effective = run(url, scenario, args.grants)
            print(f"{name:<11} {scenario:<8} {p50:>6.2f} s {p99:>5.2f} s {worst:>5.2f} s  {effective}")


if __name__ == "__main__":
    main()
