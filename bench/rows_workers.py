"""Rows of the background work (issue 14): the outbox's messages/s and a burst of due expiries.

Both reuse the stand-alone benches (``bench/bench_ack.py`` :func:`outbox_rate`, ``bench/bench_expiry.py``
:func:`run`) rather than repeating them. Neither depends on the config's size, so they are measured once, in
the ``small`` column. Expiries: ``EXPIRIES`` grants expiring within ``EXPIRY_SPREAD`` seconds (issue 14: "10,000
grants expiring in one second"), one worker replica with its default threads, on SQLite and PostgreSQL; the
figure is the time from the first expiry until every grant has ended (revoked through the connector, audited,
its notices queued), then how long after the last expiry that was, and the revokes' lateness behind their
expiries.
"""

from __future__ import annotations

from bench.registry import Figures, SizeRun, rows
from bench.serve_process import postgres_url

OUTBOX_MESSAGES = 2_000
EXPIRIES = 10_000
EXPIRY_SPREAD = 1.0
EXPIRY_THREADS = 8  # the worker's default (ACCESSBOT_WORKER_THREADS)
EXPIRY_TIMEOUT = 180.0


@rows("outbox: messages/s to the fake Slack (distinct channels)",
      "outbox: messages/s, one App Home republished per recipient", sizes=["small"])
def outbox(run: SizeRun) -> Figures:
    from bench.bench_ack import outbox_rate

    return {
        "outbox: messages/s to the fake Slack (distinct channels)":
            f"{outbox_rate(OUTBOX_MESSAGES, homes=False):,.0f}/s ({OUTBOX_MESSAGES:,} rows)",
        "outbox: messages/s, one App Home republished per recipient":
            f"{outbox_rate(OUTBOX_MESSAGES, homes=True):,.0f}/s ({OUTBOX_MESSAGES:,} rows)",
    }


def _expiry(base_url: str | None) -> str:
    from bench.bench_expiry import run as expiry_run

    r = expiry_run(base_url, EXPIRIES, 1, EXPIRY_THREADS, EXPIRY_SPREAD, EXPIRY_TIMEOUT)
    return (f"{r.total:.2f} s from the first expiry ({r.cleared_after:.2f} s after the last; lateness p50 "
            f"{r.p50:.2f} s / p99 {r.p99:.2f} s; missed or repeated revokes: {r.anomalies})")


SQLITE_LABEL = f"{EXPIRIES:,} grants expiring within {EXPIRY_SPREAD:g} s, 1 worker, SQLite"
POSTGRES_LABEL = f"{EXPIRIES:,} grants expiring within {EXPIRY_SPREAD:g} s, 1 worker, PostgreSQL"


@rows(SQLITE_LABEL, POSTGRES_LABEL, sizes=["small"])
def expiries(run: SizeRun) -> Figures:
    pg = postgres_url()
    return {
        SQLITE_LABEL: _expiry(None),
        POSTGRES_LABEL: _expiry(pg) if pg else "not run: ACCESSBOT_TEST_POSTGRES_URL is not set",
    }
