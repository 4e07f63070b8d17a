"""Benchmark the Slack edge: how fast Slack gets its answer whatever Slack's own latency, and how fast the outbox
delivers.

Run by hand from the repository root: ``python bench/bench_ack.py [--rounds N] [--messages N] [--users N]``. Not
collected by pytest. Everything runs on this machine: the real Bolt app over HTTP (signed payloads) in front of a
SQLite file, and the loopback fake Slack (tests/support/fake_slack.py) answering each Web API call after 0, 0.3
and 0.6 s, with 60 people in the approver group.

Prints, per latency, ack p50/p99/max for ``/access``, an options load, a modal submission and an Approve click
(the time from sending the request to the HTTP answer); then the outbox's messages per second to the fake Slack
(distinct channels, so Slack's one-message-per-second-per-channel pacing does not bind), and the time and memory
of loading a 10,000-user, 500-group workspace into the directory.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from slack_sdk import WebClient  # noqa: E402

from bot.lifecycle.policy_holder import PolicyHolder  # noqa: E402
from bot.lifecycle.requests import RequestInput  # noqa: E402
from bot.slack.app import outbox_sender  # noqa: E402
from bot.slack.deliveries import web_client  # noqa: E402
from bot.slack.directory import SlackDirectory  # noqa: E402
from policy.validation import load_config_text  # noqa: E402
from store import outbox as outbox_store  # noqa: E402
from store.db import Database  # noqa: E402
from tests.bot.fixtures import make_container  # noqa: E402
from tests.handlers.conftest import USERS, Bot  # noqa: E402
from tests.handlers.slow_slack import BILLING, GROUP, SLOW_CONFIG, request_values, slow_bot, timed_sender  # noqa: E402
from tests.support.fake_slack import FakeSlack  # noqa: E402


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    p50, top = statistics.median(ordered), ordered[-1]
    return f"p50 {p50 * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  max {top * 1000:7.1f} ms"


def measure(call: Callable[[], Any]) -> float:
    started = time.monotonic()
    reply = call()
    elapsed = time.monotonic() - started
    if reply.status != 200:
        raise SystemExit(f"unexpected HTTP {reply.status}: {reply.text[:200]}")
    return elapsed


def ack_round(bot: Bot, rounds: int) -> dict[str, list[float]]:
    sender = timed_sender(bot)
    figures: dict[str, list[float]] = {"/access": [], "options load": [], "modal submission": [], "Approve click": []}
    bot.sender.command("UALICE", "")  # a modal to load options for and submit (waits for the listeners)
    view = bot.fake.last_view("access_request")
    for n in range(rounds):
        figures["/access"].append(measure(lambda: sender.command("UALICE", "")))
        bot.listeners.wait_idle()
        figures["options load"].append(measure(lambda: sender.block_suggestion("UALICE", "resource", "bill",
                                                                                 view=view)))
        fresh = {k: v for k, v in view.items() if k not in ("id", "hash")}  # a new view: one request per view
        figures["modal submission"].append(measure(
            lambda fresh=fresh: sender.view_submission("UALICE", fresh, request_values())))  # type: ignore[misc]
        request_id = str(max(r.id for r in bot.container.service.list()))
        approver = GROUP[n % len(GROUP)]
        figures["Approve click"].append(measure(
            lambda who=approver, value=request_id: sender.block_actions(  # type: ignore[misc]
                who, "approve", value=value, channel_id=f"D{who}")))
        bot.listeners.wait_idle()
    return figures


def outbox_rate(messages: int, *, homes: bool) -> float:
    """Rows delivered per second by one ``send_due`` over a backlog, to a fake Slack in its own process.

    ``homes``: grantee notices (each recipient's App Home is republished at the end of the tick, one per user);
    otherwise posts to distinct channels that touch no App Home (the delivery pipeline alone)."""
    recipients = [f"UOUT{n:05d}" for n in range(messages)]
    fake = subprocess.Popen([sys.executable, "-m", "tests.support.fake_slack_process", "--users", str(messages),
                             "--also", ",".join(USERS)], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert fake.stdin is not None and fake.stdout is not None
    url = fake.stdout.readline().strip()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.db")
        db.upgrade()
        container, clock, _ = make_container(db)
        alice = container.directory.identity("UALICE", clock.now())
        request = container.service.submit(RequestInput(alice, [BILLING], "read_only", duration_hours="1",
                                                        justification="bench")).request
        client = web_client("xoxb-bench", url)
        sender = outbox_sender(container, client, tick_budget=3600)  # production pacing and threads
        sender.send_due()  # the request's own notices (and a warm-up)
        with container.db.begin() as session:
            for n, user_id in enumerate(recipients):
                outbox_store.enqueue(now=clock.now(), kind="grantee_notice" if homes else "audit_post",
                                     recipient=user_id if homes else f"C{n:08d}",
                                     request_id=request.id if homes else None,
                                     payload={} if homes else {"event": "bench", "actor": "UALICE"},
                                     session=session)
        started = time.monotonic()
        delivered = sender.send_due()
        elapsed = time.monotonic() - started
        with container.db.begin() as session:
            unsent = outbox_store.unsent_outbox_count(session=session)
        sender.close()
        db.dispose()
    fake.stdin.close()
    posted = int(fake.stdout.read().strip() or 0)
    fake.wait(10)
    if unsent or delivered != messages or posted < messages:
        raise SystemExit(f"outbox delivered {delivered} rows, Slack got {posted} messages, of {messages}")
    return delivered / elapsed


def directory_load(users: int, groups: int, latency: float) -> tuple[float, float, int]:
    with FakeSlack() as fake:
        for n in range(users):
            fake.add_user(f"U{n:06d}", f"user{n}@example.com")
        for g in range(groups):
            fake.add_usergroup(f"S{g:04d}", f"team-{g}", [f"U{(g * 20 + i) % users:06d}" for i in range(20)])
        fake.latency = latency
        slack = SlackDirectory(WebClient(token="xoxb-test", base_url=fake.url),
                               PolicyHolder.from_config(load_config_text(SLOW_CONFIG)))
        tracemalloc.start()
        started = time.monotonic()
        slack.load()
        elapsed = time.monotonic() - started
        held, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return elapsed, held / 1e6, len(fake.calls_to("users.list"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="samples per action and latency")
    parser.add_argument("--messages", type=int, default=2000, help="outbox rows for the throughput figure")
    parser.add_argument("--users", type=int, default=10_000, help="workspace size for the directory load")
    args = parser.parse_args()
    print(f"ack latency through POST /slack/events (SQLite, 60 approvers, {args.rounds} samples each)")
    for latency in (0.0, 0.3, 0.6):
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(f"sqlite:///{tmp}/bench.db")
            db.upgrade()
            with slow_bot(db, latency) as bot:
                figures = ack_round(bot, args.rounds)
            db.dispose()
        for action, samples in figures.items():
            print(f"  Slack {latency:.1f} s/call  {action:17s} {percentiles(samples)}")
    plain = outbox_rate(args.messages, homes=False)
    print(f"outbox: {plain:,.0f} messages/s to the fake Slack (own process; {args.messages} rows to distinct "
          "channels, so Slack's per-channel pacing does not bind)")
    with_homes = outbox_rate(args.messages, homes=True)
    print(f"outbox: {with_homes:,.0f} messages/s with one App Home republished per recipient")
    for latency in (0.0, 0.1):
        seconds, megabytes, pages = directory_load(args.users, 500, latency)
        print(f"directory: {args.users:,} users / 500 groups at {latency:.1f} s/call loaded in {seconds:.1f} s "
              f"({pages} users.list pages), {megabytes:.1f} MB held")
    print(f"(resource {BILLING}; machine: {sys.platform}, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
