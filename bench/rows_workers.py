"""Rows of the background work (issue 14): the outbox's messages/s and a burst of due expiries.

Both reuse the stand-alone benches (``bench/bench_ack.py`` :func:`outbox_rate`, ``bench/bench_expiry.py``
:func:`run`) rather than repeating them. Neither depends on the config's size, so they are measured once, in
the ``small`` column. Expiries: ``EXPIRIES`` grants already due, one worker replica, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from bench.registry import Figures, SizeRun, rows
from bench.serve_process import postgres_url

OUTBOX_MESSAGES = 2_000
EXPIRIES = 10_000
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

    elapsed, anomalies = expiry_run(base_url, EXPIRIES, 1, EXPIRY_TIMEOUT)
    return (f"{elapsed:.2f} s ({EXPIRIES / elapsed:,.0f}/s; missed or repeated revokes: {anomalies})")


@rows(f"{EXPIRIES:,} due expiries, 1 worker, SQLite", f"{EXPIRIES:,} due expiries, 1 worker, PostgreSQL",
      sizes=["small"])
def expiries(run: SizeRun) -> Figures:
    pg = postgres_url()
    return {
        f"{EXPIRIES:,} due expiries, 1 worker, SQLite": _expiry(None),
        f"{EXPIRIES:,} due expiries, 1 worker, PostgreSQL":
            _expiry(pg) if pg else "not run: ACCESSBOT_TEST_POSTGRES_URL is not set",
    }
