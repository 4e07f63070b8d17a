"""The webhook connector against a real HTTP server on 127.0.0.1 (stdlib, in a thread)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from integrations.base import ConnectorContext, ConnectorError, GrantSpec, connector_factory
from integrations.webhook import WebhookConnector
from policy.resources import Permission, Resource

SECRET = "s3cret-hook-key"
INTEGRATION = "deploy"
SERVICE = Resource(integration=INTEGRATION, type="service", name="billing-api", tags=(("env", "prod"),))
EXPIRES_AT = datetime(2030, 1, 5, 10, 0, tzinfo=UTC)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers each POST with the next scripted (status, body, delay); records what it got."""

    url: str = ""
    answers: list[tuple[int, bytes, float]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    def answer(self, status: int, body: Any = b"", delay: float = 0.0) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers.append((status, data, delay))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.received.append(Received(dict(self.headers.items()), body))
            status, data, delay = state.answers.pop(0) if state.answers else (200, b"", 0.0)
            time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (the timeout test)
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/jit?token=abc"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _spec(grant_id: int = 12) -> GrantSpec:
    return GrantSpec(
        grant_id=grant_id,
        request_id=3,
        grantee_slack_id="U0ALICE",
        grantee_email="alice@example.com",
        integration=INTEGRATION,
        resource=SERVICE,
        permission=Permission(integration=INTEGRATION, name="deployer"),
        expires_at=EXPIRES_AT,
    )


def _connector(receiver: Receiver, *, timeout: float = 5.0) -> WebhookConnector:
    return WebhookConnector(
        INTEGRATION, receiver.url, SECRET, [SERVICE], timeout=timeout, clock=lambda: 1_767_000_000
    )


def test_calls_are_signed_and_carry_action_and_grant(receiver: Receiver) -> None:
    connector = _connector(receiver)
    connector.grant(_spec())
    connector.extend(_spec(), EXPIRES_AT + timedelta(minutes=30))
    connector.revoke(_spec())

    actions = []
    for call in receiver.received:
        timestamp = call.headers["X-Accessbot-Timestamp"]
        assert timestamp == "1767000000"
        expected = hmac.new(
            SECRET.encode(), f"v1:{timestamp}:".encode() + call.body, hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(call.headers["X-Accessbot-Signature"], f"v1={expected}")
        assert call.headers["Content-Type"] == "application/json"
        payload = json.loads(call.body)
        assert payload["grant"] == _spec().as_json()
        actions.append((payload["action"], payload["until"], call.headers["Idempotency-Key"]))
    assert actions == [
        ("grant", "2030-01-05T10:00:00+00:00", "grant-12-grant"),
        ("extend", "2030-01-05T10:30:00+00:00", f"grant-12-extend-{int(EXPIRES_AT.timestamp()) + 1800}"),
        ("revoke", None, "grant-12-revoke"),
    ]


def test_a_tampered_body_does_not_verify(receiver: Receiver) -> None:
    _connector(receiver).grant(_spec())
    call = receiver.received[0]
    timestamp = call.headers["X-Accessbot-Timestamp"]
    tampered = call.body.replace(b"deployer", b"admin")
    forged = hmac.new(SECRET.encode(), f"v1:{timestamp}:".encode() + tampered, hashlib.sha256).hexdigest()
    assert call.headers["X-Accessbot-Signature"] != f"v1={forged}"


def test_2xx_with_credentials_passes_them_through(receiver: Receiver) -> None:
    receiver.answer(
        201, {"external_ref": "deploy-77", "credentials": {"token": "t-123", "ttl": 3600}, "note": "hi"}
    )
    result = _connector(receiver).grant(_spec())
    assert result.external_ref == "deploy-77"
    assert dict(result.credentials) == {"token": "t-123", "ttl": "3600"}
    assert result.note == "hi"


def test_2xx_without_json_is_done(receiver: Receiver) -> None:
    receiver.answer(204)
    receiver.answer(200, b"OK")
    connector = _connector(receiver)
    assert connector.grant(_spec()).credentials == {}
    connector.revoke(_spec())


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (503, True), (429, True), (409, True), (408, True), (400, False), (403, False)],
)
def test_failures_name_the_status_and_say_if_a_retry_helps(
    receiver: Receiver, status: int, retryable: bool
) -> None:
    receiver.answer(status, {"error": "nope"})
    with pytest.raises(ConnectorError) as failed:
        _connector(receiver).revoke(_spec())
    assert f"HTTP {status}" in str(failed.value)
    assert failed.value.retryable is retryable
    assert "token=abc" not in str(failed.value), "the URL's query (often a token) is not in messages"


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    receiver.answer(302, b"")
    with pytest.raises(ConnectorError, match="HTTP 302") as failed:
        _connector(receiver).grant(_spec())
    assert not failed.value.retryable
    assert len(receiver.received) == 1


def test_timeout_is_a_retryable_error(receiver: Receiver) -> None:
    receiver.answer(200, b"", delay=1.5)
    started = time.monotonic()
    with pytest.raises(ConnectorError, match="timed out") as failed:
        _connector(receiver, timeout=0.3).grant(_spec())
    assert failed.value.retryable
    assert time.monotonic() - started < 1.4


def test_connection_refused_is_a_retryable_error() -> None:
    connector = WebhookConnector(INTEGRATION, "http://127.0.0.1:1/jit", SECRET, [], timeout=2)
    with pytest.raises(ConnectorError, match="could not connect") as failed:
        connector.grant(_spec())
    assert failed.value.retryable


def test_factory_reads_the_secret_from_the_environment(receiver: Receiver) -> None:
    @dataclass
    class Config:
        name: str = INTEGRATION
        url: str = receiver.url
        secret_env: str | None = "HOOK_SECRET"
        timeout_seconds: float = 5.0

        def catalog_resources(self) -> list[Resource]:
            return [SERVICE]

    factory = connector_factory("webhook")
    connector = factory(Config(), ConnectorContext(env={"HOOK_SECRET": SECRET}))
    assert connector.catalog() == [SERVICE]
    connector.revoke(_spec())
    assert receiver.received[0].headers["X-Accessbot-Signature"].startswith("v1=")

    with pytest.raises(ConnectorError, match="HOOK_SECRET") as missing:
        factory(Config(), ConnectorContext(env={}))
    assert not missing.value.retryable

    unsigned = factory(Config(secret_env=None), ConnectorContext(env={}))
    unsigned.revoke(_spec())
    assert "X-Accessbot-Signature" not in receiver.received[1].headers
