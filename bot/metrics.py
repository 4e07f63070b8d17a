"""What an admin alerts on, for ``GET /metrics``: grants by state, requests by flow and state, due work and
outbox backlogs. (Slack API and connector calls are counted where they happen: :mod:`bot.slack.metered`,
:mod:`bot.connector_metrics`.)

Read from the database at scrape time (every replica reports the same shared figures), each with an indexed query
that does not grow with history. Alert on ``accessbot_grants{state="revoke_failed"} > 0`` (access that could
not be taken away) and on ``accessbot_due_work_overdue_seconds`` growing (nobody is working the queue).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from datetime import UTC
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.clock import Clock
from store import due_work, figures
from store import grants as grant_store
from store import outbox as outbox_store
from store.db import Database


class StateCollector(Collector):
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock.now()
        with self.db.begin() as session:
            grants = grant_store.live_grant_counts(session=session)
            pending, overdue, oldest = due_work.pending_work_figures(now=now, session=session)
            unsent = outbox_store.unsent_outbox_count(session=session)
            requests = figures.request_counts(session=session)
        by_state = GaugeMetricFamily("accessbot_grants", "Grants that still need the bot, by state", labels=["state"])
        for state, count in sorted(grants.items()):
            by_state.add_metric([state], count)
        yield by_state
        by_flow = GaugeMetricFamily("accessbot_requests", "Requests by flow and state (outcome), all time",
                                    labels=["flow", "state"])
        for (flow, state), count in sorted(requests.items()):
            by_flow.add_metric([flow, state], count)
        yield by_flow
        yield GaugeMetricFamily("accessbot_due_work_pending", "Timers not done yet (expiries, reminders, …)",
                                value=pending)
        yield GaugeMetricFamily("accessbot_due_work_overdue", "Timers past their time, not done yet", value=overdue)
        late = 0.0
        if oldest is not None:
            late = max((now - (oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC))).total_seconds(), 0.0)
        yield GaugeMetricFamily("accessbot_due_work_overdue_seconds", "How late the most overdue timer is",
                                value=late)
        yield GaugeMetricFamily("accessbot_outbox_unsent", "Slack messages waiting to be sent", value=unsent)


class Ticking(Protocol):
    ticks: int
    last_progress: float | None


class TickCollector(Collector):
    """This replica's schedulers: ticks so far, and how long since one last made progress (alert when it grows)."""

    def __init__(self, schedulers: Mapping[str, Ticking]) -> None:
        self.schedulers = schedulers

    def collect(self) -> Iterator[Metric]:
        ticks = CounterMetricFamily("accessbot_scheduler_ticks", "Scheduler ticks on this replica",
                                    labels=["scheduler"])
        idle = GaugeMetricFamily("accessbot_scheduler_idle_seconds",
                                 "Seconds since the scheduler last started a tick or finished a task",
                                 labels=["scheduler"])
        now = time.monotonic()
        for name, scheduler in sorted(self.schedulers.items()):
            ticks.add_metric([name], scheduler.ticks)
            if scheduler.last_progress is not None:
                idle.add_metric([name], now - scheduler.last_progress)
        yield ticks
        yield idle


def state_metrics(db: Database, clock: Clock, schedulers: Mapping[str, Ticking] | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(db, clock))
    if schedulers:
        registry.register(TickCollector(schedulers))
    return registry
