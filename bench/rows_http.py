"""Rows of the real ``accessbot serve --http`` process (issue 14): start-to-healthy, RSS, and 50 concurrent
clients sending signed payloads for ``/access``, options loads, modal submissions and Approve clicks, on SQLite
and on PostgreSQL (``$ACCESSBOT_TEST_POSTGRES_URL``; without it those rows say so).

Each phase sends at most ``CALLS`` requests and stops after ``max(10, 5 × --seconds)`` seconds. The clients run
in the bench process, the fake Slack too; the serve process has its own interpreter. Latency is measured by
the client: from sending the request to the whole HTTP answer.
"""

from __future__ import annotations

from bench.http_load import CLIENTS, THINK, WAYS, people, scenario
from bench.registry import Figures, SizeRun, rows
from bench.serve_process import postgres_url, served

CALLS = 200  # per phase
ACTIONS = ("/access", "options load", "modal submission", "Approve click")
BACKENDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _labels(backend: str) -> tuple[str, ...]:
    name = BACKENDS[backend]
    return (f"`serve` start-to-healthy ({name})", f"`serve` RSS after the load ({name})",
            *(f"{action}, {name}, {_way(way)}: p50 / p99, throughput" for action in ACTIONS for way in WAYS))


def _way(way: str) -> str:
    if WAYS[way]:
        return f"{CLIENTS} people acting every ~{THINK:.0f} s"
    return f"{CLIENTS} clients flat out"


def _measure(run: SizeRun, backend: str) -> Figures:
    labels = _labels(backend)
    if backend == "postgresql" and postgres_url() is None:
        return dict.fromkeys(labels, "not run: ACCESSBOT_TEST_POSTGRES_URL is not set")
    who = people(run.size.users, run.size.groups)
    with served(run.path, users=run.size.users, backend=backend) as bot:
        phases = scenario(bot, who, CALLS, max(10.0, 5 * run.seconds))
        rss = bot.rss_mb()
        healthy = bot.healthy_after
    figures = {labels[0]: f"{healthy:.2f} s", labels[1]: f"{rss:.0f} MB"}
    keys = [f"{action}, {way}" for action in ACTIONS for way in WAYS]
    for label, key in zip(labels[2:], keys, strict=True):
        figures[label] = phases[key].figure() if key in phases else "not reached"
    return figures


@rows(*_labels("sqlite"))
def http_sqlite(run: SizeRun) -> Figures:
    return _measure(run, "sqlite")


@rows(*_labels("postgresql"))
def http_postgresql(run: SizeRun) -> Figures:
    return _measure(run, "postgresql")
