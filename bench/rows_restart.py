"""``serve`` on a Slack that takes 0.6 s to answer each call, as Slack does (issue 14: a 10,000-person org).

The first start reads the whole workspace before it serves: ``users.list`` in pages of 200, 50 pages for
10,000 people. A restart on the same database serves from the snapshot the first start kept
(:mod:`bot.slack.roster_snapshots`) and reads Slack again in the background. Seconds from ``Popen`` to the
first 200 of ``GET /healthz``, SQLite.
"""

from __future__ import annotations

from bench.registry import Figures, SizeRun, rows
from bench.serve_process import served

SLACK_LATENCY = 0.6
LABEL = f"`serve` start-to-healthy, Slack at {SLACK_LATENCY} s a call (SQLite): first start / restart"


@rows(LABEL)
def restart(run: SizeRun) -> Figures:
    with served(run.path, users=run.size.users, backend="sqlite", slack_latency=SLACK_LATENCY) as bot:
        first = bot.healthy_after
        again = bot.restart()
    return {LABEL: f"{first:.2f} s / {again:.2f} s"}
