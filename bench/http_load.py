"""The HTTP load generator: concurrent clients sending signed Slack payloads to a real ``serve --http``.

:func:`drive` runs ``count`` calls over ``clients`` threads (each a person whose actions Slack delivers one at a
time) and stops by itself at ``count`` or after ``seconds``. Two ways to load the bot:

* **people** (``think`` > 0): each of the 50 clients waits a random think time (uniform, mean ``think``
  seconds, seeded) between getting an answer and acting again — 50 people acting at once, each about once a
  second, ~50 actions/s: a large org's busiest moment. The latency targets of issue 14 are read here.
* **flat out** (``think`` = 0): each client sends its next request the moment it has an answer. This measures
  capacity (answers/s); its latency is, by Little's law, clients ÷ throughput (50 clients at 500 answers/s wait
  100 ms) — a queue in front of a saturated bot, not the time one action takes.

:func:`scenario` is the whole user path on one served bot: ``/access`` (the modal), options loads while typing,
modal submissions (each a new request), and an Approve click per pending request, each way; every answer must be
HTTP 200 and every click must end in an approved request, or the figure says how many did not.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from bench.registry import percentiles
from bench.serve_process import SIGNING_SECRET, Served
from store.db import Database
from store.models import AccessRequest
from tests.support.slack_sender import Response, SlackSender, input_values, select_value, text_value

CLIENTS = 50
THINK = 1.0  # seconds a person takes between an answer and their next action, on average
PENDING_TIMEOUT = 60.0  # for submissions to become requests and clicks to become approvals
WAYS = {"people": THINK, "flat out": 0.0}


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)  # seconds, answered 200
    failures: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    replies: list[Response] = field(default_factory=list)

    def figure(self) -> str:
        if not self.latencies:
            return f"no answers ({'; '.join(self.failures[:2])})"
        p50, p99 = percentiles(self.latencies) if len(self.latencies) > 1 else (self.latencies[0],) * 2
        text = (f"p50 {p50 * 1000:.1f} ms / p99 {p99 * 1000:.1f} ms, "
                f"{len(self.latencies) / self.elapsed:,.0f}/s (n={len(self.latencies)})")
        if self.failures:
            text += f"; {len(self.failures)} failed: {self.failures[0]}"
        return text


def drive(call: Callable[[int], Response], count: int, seconds: float, clients: int = CLIENTS,
          think: float = 0.0) -> Phase:
    """``call(n)`` for n in 0..count-1 over ``clients`` threads, until done or ``seconds`` have passed; with
    ``think``, each client first waits a random think time (mean ``think`` s) before each call."""
    phase = Phase()
    numbers = itertools.count()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    seeds = itertools.count(14)

    def client() -> None:
        with lock:
            rng = random.Random(next(seeds))
        while time.monotonic() < deadline:
            if think:
                time.sleep(rng.uniform(0, 2 * think))
            with lock:
                n = next(numbers)
            if n >= count:
                return
            started = time.perf_counter()
            try:
                reply = call(n)
            except OSError as exc:  # a refused or reset connection is a failure to report, not a crash
                with lock:
                    phase.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - started
            with lock:
                if reply.status == 200:
                    phase.latencies.append(elapsed)
                    phase.replies.append(reply)
                else:
                    phase.failures.append(f"HTTP {reply.status} {reply.text[:80]}")

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    phase.elapsed = time.monotonic() - started
    return phase


@dataclass(frozen=True)
class People:
    """Who asks and who approves: flow1 of bench/datasets.py (group g1 asks, group g7 approves)."""

    requesters: list[str]
    approvers: list[str]
    permission: str = "perm1"
    query: str = "staging"  # flow1 offers int1's resources tagged env=staging


def people(users: int, groups: int) -> People:
    def members(group: int) -> list[str]:
        return [f"U{i:07d}" for i in range(users)
                if i % groups == group or (i % 3 == 0 and (i * 7 + 3) % groups == group)]

    requesters, approvers = members(1), members(7)
    return People([u for u in requesters if u not in approvers], [u for u in approvers if u not in requesters])


def scenario(bot: Served, who: People, count: int, seconds: float) -> dict[str, Phase]:
    """The four phases on ``bot``, each way (:data:`WAYS`); each bounded by ``count`` calls and ``seconds``.

    Keys are ``"<action>, <way>"``, e.g. ``"Approve click, people"``."""
    sender = SlackSender(bot.url, SIGNING_SECRET, response_url_base=bot.fake.hooks_url, timeout=30)
    first = who.requesters[0]
    if sender.command(first, "").status != 200:
        raise RuntimeError("/access was refused")
    bot.fake.wait_for("views.open", timeout=30)
    view = bot.fake.last_view("access_request")
    phases: dict[str, Phase] = {}
    for way, think in WAYS.items():
        phases[f"/access, {way}"] = drive(
            lambda n: sender.command(who.requesters[n % len(who.requesters)], ""), count, seconds, think=think)
    for way, think in WAYS.items():
        phases[f"options load, {way}"] = drive(
            lambda n: sender.block_suggestion(who.requesters[n % len(who.requesters)], "resource", who.query,
                                              view=view), count, seconds, think=think)
    options = _option_values(phases["options load, people"].replies[0])
    pairs = [(user, option) for option in options for user in who.requesters][:count * len(WAYS)]
    fresh = {k: v for k, v in view.items() if k not in ("id", "hash")}  # a new view per submission
    db = Database(bot.database_url)
    try:
        for index, (way, think) in enumerate(WAYS.items()):
            mine = pairs[index * count:(index + 1) * count]
            before = set(_pending(db))
            submitted = phases[f"modal submission, {way}"] = drive(
                lambda n, mine=mine: sender.view_submission(mine[n][0], fresh, _values(mine[n][1], who.permission)),
                len(mine), seconds, think=think)
            refused = [r.text[:120] for r in submitted.replies if r.body and b"errors" in r.body]
            submitted.failures += [f"refused: {t}" for t in refused]
            pending = [r for r in _wait_pending(db, len(before) + len(submitted.replies) - len(refused))
                       if r not in before]
            clicks = phases[f"Approve click, {way}"] = drive(
                lambda n, pending=pending: sender.block_actions(
                    who.approvers[n % len(who.approvers)], "approve", value=str(pending[n]),
                    channel_id=f"D{who.approvers[n % len(who.approvers)]}"),
                len(pending), seconds, think=think)
            left = _wait_decided(db, pending)
            clicks.failures += [f"request {r} still pending after {PENDING_TIMEOUT:.0f} s" for r in left]
    finally:
        db.dispose()
    return phases


def _option_values(reply: Response) -> list[str]:
    answer: dict[str, Any] = reply.json()
    groups = answer.get("option_groups") or [{"options": answer.get("options", [])}]
    values = [o["value"] for g in groups for o in g["options"]]
    if not values:
        raise RuntimeError(f"the options load offered nothing: {reply.text[:200]}")
    return values


def _values(option: str, permission: str) -> dict[str, Any]:
    return input_values({
        "resource": {"type": "multi_external_select", "selected_options": [
            {"text": {"type": "plain_text", "text": option, "emoji": True}, "value": option}]},
        "permission": select_value(permission, permission),
        "duration_hours": text_value("1"),
        "justification": text_value("bench: INC-14 load"),
    })


def _pending(db: Database) -> list[int]:
    with db.begin() as session:
        return list(session.scalars(select(AccessRequest.id).where(AccessRequest.state == "pending")
                                    .order_by(AccessRequest.id)))


def _wait_pending(db: Database, expected: int) -> list[int]:
    deadline = time.monotonic() + PENDING_TIMEOUT
    ids = _pending(db)
    while len(ids) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
        ids = _pending(db)
    return ids


def _wait_decided(db: Database, ids: list[int]) -> list[int]:
    deadline = time.monotonic() + PENDING_TIMEOUT
    left = set(_pending(db)) & set(ids)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = set(_pending(db)) & set(ids)
    return sorted(left)
