"""``/metrics`` beyond the database figures: Slack API calls, connector calls, requests by flow; the log context."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError

from bot.container import build_connectors, unavailable_integrations
from bot.lifecycle.requests import RequestInput
from bot.logs import configure, log_context
from bot.metrics import state_metrics
from bot.settings import Settings
from bot.slack.app import create_app
from bot.slack.http import wsgi_app
from bot.slack.metered import MeteredWebClient
from integrations.base import ConnectorError, GrantSpec
from policy.validation import load_config_text
from store.db import Database
from tests.bot.fixtures import CONFIG, make_container
from tests.bot.test_metrics import figures
from tests.support.fake_slack import FakeSlack
from tests.support.slack_sender import SlackSender


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("UALICE", "alice@example.com")
        yield fake


def test_slack_api_calls_are_counted_by_method_and_outcome(fake: FakeSlack) -> None:
    client = MeteredWebClient(token="xoxb-test", base_url=fake.url)
    calls = "accessbot_slack_api_calls_total"
    before_ok = sample(calls, method="chat.postMessage", outcome="ok")
    before_error = sample(calls, method="chat.postMessage", outcome="channel_not_found")
    before_seconds = sample("accessbot_slack_api_call_seconds_count", method="chat.postMessage")

    client.chat_postMessage(channel="UALICE", text="hello")
    fake.fail_next("chat.postMessage", error="channel_not_found", status=200, retry_after=None)
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="CNOPE", text="hello")
    assert sample(calls, method="chat.postMessage", outcome="ok") == before_ok + 1
    assert sample(calls, method="chat.postMessage", outcome="channel_not_found") == before_error + 1
    assert sample("accessbot_slack_api_call_seconds_count", method="chat.postMessage") == before_seconds + 2

    before = sample(calls, method="auth.test", outcome="unreachable")
    with pytest.raises(OSError):
        MeteredWebClient(token="xoxb-test", base_url="http://127.0.0.1:1/api/", timeout=2).auth_test()
    assert sample(calls, method="auth.test", outcome="unreachable") == before + 1


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def test_listeners_call_slack_through_a_metered_client(db: Database, fake: FakeSlack) -> None:
    """Bolt hands each listener a client of its own; the app's metered client is copied, so those count too."""
    container, _, _ = make_container(db)
    settings = Settings(SLACK_BOT_TOKEN=SecretStr("xoxb-test"), SLACK_SIGNING_SECRET=SecretStr("s3cret"),
                        SLACK_API_URL=fake.url)
    server = make_server("127.0.0.1", 0, wsgi_app(create_app(settings, container)), handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        before = sample("accessbot_slack_api_calls_total", method="views.open", outcome="ok")
        sender = SlackSender(f"http://127.0.0.1:{server.server_port}", "s3cret", response_url_base=fake.hooks_url)
        assert sender.block_actions("UALICE", "new_request", view={"type": "home", "blocks": []}).status == 200
        fake.wait_for("views.open")
        deadline = time.monotonic() + 10  # counted once the listener's call has returned (after the fake saw it)
        while sample("accessbot_slack_api_calls_total", method="views.open", outcome="ok") < before + 1:
            assert time.monotonic() < deadline, "the listener's views.open was not counted"
            time.sleep(0.02)
        assert sample("accessbot_slack_api_calls_total", method="views.open", outcome="ok") == before + 1
    finally:
        server.shutdown()
        server.server_close()


def test_connector_calls_are_counted_by_integration_operation_and_outcome() -> None:
    config = load_config_text(CONFIG)
    connectors = build_connectors(config, {})
    calls, seconds = "accessbot_connector_calls_total", "accessbot_connector_call_seconds_count"
    before = sample(calls, integration="db", operation="catalog", outcome="ok")
    before_seconds = sample(seconds, integration="db", operation="catalog")
    assert {r.name for r in connectors["db"].catalog()} == {"billing", "search"}
    assert sample(calls, integration="db", operation="catalog", outcome="ok") == before + 1
    assert sample(seconds, integration="db", operation="catalog") == before_seconds + 1


def test_an_unavailable_connector_counts_errors_and_is_still_reported() -> None:
    config = load_config_text(CONFIG.replace("integrations:\n", """integrations:
  - name: warehouse
    type: postgresql
    dsn_env: WAREHOUSE_DSN
    resources: [{type: database, name: dw}]
    permissions: {read_only: {roles: [dw_ro]}}
""", 1))
    connectors = build_connectors(config, {}, installation_id="0123abcd")
    assert "WAREHOUSE_DSN" in unavailable_integrations(connectors)["warehouse"]
    before = sample("accessbot_connector_calls_total", integration="warehouse", operation="revoke", outcome="error")
    with pytest.raises(ConnectorError):
        connectors["warehouse"].revoke(_spec())
    assert sample("accessbot_connector_calls_total", integration="warehouse", operation="revoke",
                  outcome="error") == before + 1


def _spec() -> GrantSpec:
    from datetime import UTC, datetime

    from policy.resources import Permission, Resource

    return GrantSpec(grant_id=1, request_id=1, grantee_slack_id="UALICE", grantee_email="alice@example.com",
                     integration="warehouse", resource=Resource(integration="warehouse", type="database", name="dw"),
                     permission=Permission(integration="warehouse", name="read_only"), expires_at=datetime.now(UTC))


def test_requests_are_counted_by_flow_and_state(db: Database) -> None:
    c, clock, _ = make_container(db)
    registry = state_metrics(db, clock)
    alice = c.directory.identity("UALICE", clock.now())
    c.service.submit(RequestInput(alice, ["db/database/search"], "read_write", justification="metrics"))
    c.service.submit(RequestInput(alice, ["db/database/billing"], "read_write", justification="metrics"))
    seen = figures(registry)
    assert seen[("accessbot_requests", (("flow", "staging-auto"), ("state", "active")))] == 1
    assert seen[("accessbot_requests", (("flow", "write-prod"), ("state", "pending")))] == 1


def test_json_lines_carry_the_bound_context() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure("INFO", "json", stream=stream)
    try:
        with log_context(user_id="UALICE", action="approve", request_id=7):
            logging.getLogger("bot.test").info("approved")
        logging.getLogger("bot.test").info("outside")
        logging.getLogger("apscheduler.executors.default").info("Running job")  # a tick line: dropped at INFO
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["message"] == "approved" and inside["level"] == "INFO" and inside["logger"] == "bot.test"
    assert (inside["user_id"], inside["action"], inside["request_id"]) == ("UALICE", "approve", "7")
    assert outside["message"] == "outside" and "user_id" not in outside


def test_a_burst_that_queues_for_waitress_threads_is_one_warning_not_one_per_request() -> None:
    """The real waitress, 2 threads busy 0.2 s a request, 12 requests at once: waitress warns for each one that
    waits; the log says it once, with the longest queue (an alert on warnings fires once, not ten times)."""
    import urllib.request

    from waitress import create_server

    def slow(environ: dict[str, object], start_response: object) -> list[bytes]:
        time.sleep(0.2)
        start_response("200 OK", [("Content-Type", "text/plain")])  # type: ignore[operator]
        return [b"ok"]

    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure("INFO", "text", stream=stream)
    server = create_server(slow, host="127.0.0.1", port=0, threads=2)
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    port = server.effective_port  # type: ignore[union-attr]
    try:
        def get() -> None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as reply:  # noqa: S310
                assert reply.read() == b"ok"

        clients = [threading.Thread(target=get) for _ in range(12)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(timeout=30)
    finally:
        server.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = [line for line in stream.getvalue().splitlines() if "waitress.queue" in line]
    assert len(lines) == 1, lines
    assert "HTTP requests are waiting for a free worker thread" in lines[0] and "Task queue depth" not in lines[0]


def test_the_queue_warning_comes_back_after_a_minute_with_the_longest_queue_meanwhile() -> None:
    from bot.logs import QueueDepthSummary

    now = [0.0]
    summary = QueueDepthSummary(every=60.0, monotonic=lambda: now[0])

    def record(depth: int) -> logging.LogRecord:
        return logging.LogRecord("waitress.queue", logging.WARNING, "task.py", 1, "Task queue depth is %d",
                                 (depth,), None)

    first = record(1)
    assert summary.filter(first) and first.getMessage().startswith("HTTP requests are waiting for a free worker "
                                                                   "thread: 1 now; at most 1, 1 time(s)")
    assert not any(summary.filter(record(d)) for d in (5, 40, 3))  # within the minute: held back
    now[0] = 61.0
    later = record(2)
    assert summary.filter(later) and "2 now; at most 40, 4 time(s)" in later.getMessage()
    other = logging.LogRecord("waitress", logging.WARNING, "x.py", 1, "Task queue depth is %d", (9,), None)
    assert summary.filter(other) and other.getMessage() == "Task queue depth is 9"  # only waitress.queue's
