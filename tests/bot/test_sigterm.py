"""SIGTERM during due work, with real processes: two ``accessbot serve`` replicas on one PostgreSQL database.

Replica A starts revoking an expired grant through a webhook that never answers it; SIGTERM arrives. A must exit
0 within 10 s with its work handed back, and replica B must revoke the grant at once — not after A's lease and
safety-net timer run out (two minutes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from store.db import Database
from store.models import AccessRequest, DueWork, Grant
from tests.bot.test_serve import free_port, stop, wait_until_healthy
from tests.bot.worker_process import postgres_schema
from tests.support.fake_slack import FakeSlack

POSTGRES_URL = os.environ.get("ACCESSBOT_TEST_POSTGRES_URL")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason="ACCESSBOT_TEST_POSTGRES_URL is not set"),
]
REPO = Path(__file__).resolve().parents[2]
CONFIG = """
directory:
  users: [{email: alice@example.com, slack_id: UALICE, groups: [sre]}]
integrations:
  - name: hook
    type: webhook
    url: {url}
    secret_env: HOOK_SECRET
    timeout_seconds: 60
    resources: [{type: service, name: api}]
    permissions: {deployer: {}}
flows:
  - name: deploy
    requestors: {conditions: [{attribute: group, op: is, values: [sre]}]}
    targets: [{integration: hook, permissions: [deployer], resources: {any: true}}]
"""


@dataclass
class Hit:
    action: str
    grant_id: int
    at: float


class Webhook:
    """The system access is granted in: answers 200, except that it never answers the first revoke."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.release = threading.Event()
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with hook.lock:
                    first_revoke = body["action"] == "revoke" and not any(h.action == "revoke" for h in hook.hits)
                    hook.hits.append(Hit(body["action"], body["grant"]["id"], time.monotonic()))
                if first_revoke:
                    hook.release.wait(60)  # the backend hangs on this one
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jit"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def revokes(self) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.action == "revoke"]

    def wait_revokes(self, count: int, timeout: float) -> list[Hit]:
        deadline = time.monotonic() + timeout
        while len(self.revokes()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} revoke call(s), got {self.revokes()}")
            time.sleep(0.02)
        return self.revokes()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def pg_url() -> Iterator[str]:
    assert POSTGRES_URL
    with postgres_schema(POSTGRES_URL) as url:
        yield url


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def seed_expired_grant(db: Database) -> int:
    now = datetime.now(UTC)
    with db.begin() as session:
        request = AccessRequest(
            state="active", flow_name="deploy", flow_snapshot={"flow": {}, "risk": "medium"},
            requester_id="UALICE", requester_email="alice@example.com", grantee_ids=["UALICE"], integration="hook",
            permission="deployer", resource_keys=["hook/service/api"], duration_seconds=3600,
            justification="sigterm test", escalation_tier=0, created_at=now, updated_at=now,
        )
        grant = Grant(
            request=request, grantee_id="UALICE", grantee_email="alice@example.com", integration="hook",
            resource_key="hook/service/api",
            resource={"type": "service", "name": "api", "path": "", "source_id": "", "tags": {}, "risk": "medium"},
            permission="deployer", permission_spec={"risk": "medium"}, state="active", created_at=now,
            granted_at=now - timedelta(hours=1), expires_at=now, extensions_used=0, attempts=0,
        )
        session.add(request)
        session.flush()
        session.add(DueWork(kind="expire", dedupe_key=f"expire:{grant.id}", request_id=request.id,
                            grant_id=grant.id, due_at=now, payload={}, attempts=0))
        return grant.id


def replica(tmp_path: Path, name: str, url: str, fake: FakeSlack, config: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ACCESSBOT_"))}
    env.update(
        SLACK_API_URL=fake.url, SLACK_BOT_TOKEN="xoxb-sigterm-test", SLACK_SIGNING_SECRET="sigterm-secret",
        ACCESSBOT_CONFIG=str(config), ACCESSBOT_DATABASE_URL=url, ACCESSBOT_TICK_SECONDS="0.2",
        ACCESSBOT_ENCRYPTION_KEY=KEY, HOOK_SECRET="hook-secret", PYTHONPATH=str(REPO),
    )
    workdir = tmp_path / name
    workdir.mkdir()
    return subprocess.Popen(
        [sys.executable, "-m", "accessbot", "serve", "--http", "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


KEY = Fernet.generate_key().decode()


def grant_state(db: Database, grant_id: int) -> str:
    with db.begin() as session:
        state = session.scalar(select(Grant.state).where(Grant.id == grant_id))
        assert state is not None
        return state


def test_sigterm_during_due_work_hands_it_to_another_replica_at_once(
    tmp_path: Path, pg_url: str, webhook: Webhook
) -> None:
    config = tmp_path / "accessbot.yml"
    config.write_text(CONFIG.replace("{url}", webhook.url))
    db = Database(pg_url)
    with FakeSlack() as fake:
        fake.add_user("UALICE", "alice@example.com")
        port_a, port_b = free_port(), free_port()
        a = replica(tmp_path, "a", pg_url, fake, config, port_a)
        b: subprocess.Popen[bytes] | None = None
        try:
            wait_until_healthy(f"http://127.0.0.1:{port_a}", a)
            grant_id = seed_expired_grant(db)
            (first,) = webhook.wait_revokes(1, timeout=10)  # A is inside the revoke; the webhook hangs
            assert first.grant_id == grant_id and grant_state(db, grant_id) == "revoking"

            b = replica(tmp_path, "b", pg_url, fake, config, port_b)
            wait_until_healthy(f"http://127.0.0.1:{port_b}", b)
            assert len(webhook.revokes()) == 1  # B leaves A's work alone while A holds it

            signalled = time.monotonic()
            a.send_signal(signal.SIGTERM)
            a.wait(timeout=15)
            exited = time.monotonic()
            output_a = stop(a)
            assert a.returncode == 0, output_a
            assert exited - signalled < 10, output_a
            assert "SIGTERM received: stopping" in output_a
            assert "work in progress cut short, to be retried; 1 lease(s) handed back" in output_a, output_a
            assert "Traceback" not in output_a

            second = webhook.wait_revokes(2, timeout=5)[1]  # B, at its next tick: not two minutes later
            assert second.grant_id == grant_id
            assert second.at - exited < 2.0
            print(f"SIGTERM to exit: {exited - signalled:.2f} s; exit to the other replica's revoke: "
                  f"{second.at - exited:.2f} s")
            deadline = time.monotonic() + 10
            while grant_state(db, grant_id) != "expired" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert grant_state(db, grant_id) == "expired"
        finally:
            if a.poll() is None:
                stop(a)
            if b is not None:
                output_b = stop(b)
                assert b.returncode == 0, output_b
                assert "all work in progress finished" in output_b, output_b
    db.dispose()
