"""``accessbot demo --postgres URL``: the config's PostgreSQL integration is real (a login role per grant)."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from bot.demo.server import Demo
from tests.demo.conftest import post, state, wait_for
from tests.demo.steps import act, dm, fill, request_modal, texts

pytestmark = pytest.mark.postgres
CONFIG = """
directory:
  users:
    - {{email: alice@example.com, groups: [sre]}}
    - {{email: bob@example.com, groups: [sre-leads]}}
integrations:
  - name: warehouse
    type: postgresql
    dsn_env: WAREHOUSE_DSN
    resources: [{{type: database, name: {database}}}]
    permissions: {{read_only: {{roles: [{role}]}}}}
flows:
  - name: warehouse-read
    requestors: {{conditions: [{{attribute: group, op: is, values: [sre]}}]}}
    targets: [{{integration: warehouse, permissions: [read_only]}}]
    grant_for: 2h
    require_duration: true
    approval:
      type: approvers
      groups: [{{conditions: [{{attribute: group, op: is, values: [sre-leads]}}]}}]
"""


@pytest.fixture
def postgres() -> Iterator[tuple[str, psycopg.Connection, str]]:
    url = os.environ.get("ACCESSBOT_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("ACCESSBOT_TEST_POSTGRES_URL is not set")
    admin = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True)
    role = f"acb_demo_ro_{secrets.token_hex(4)}"
    admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
    try:
        yield url, admin, role
    finally:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        admin.close()


def members_of(admin: psycopg.Connection, role: str) -> list[str]:
    rows = admin.execute("SELECT m.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid "
                         "JOIN pg_roles m ON m.oid = a.member WHERE r.rolname = %s", (role,)).fetchall()
    return [r[0] for r in rows]


def test_with_postgres_the_grant_is_a_real_login_role(postgres: tuple[str, psycopg.Connection, str],
                                                      tmp_path: Path) -> None:
    url, admin, role = postgres
    config = tmp_path / "accessbot.yml"
    config.write_text(CONFIG.format(database=admin.info.dbname, role=role))
    with Demo(config, port=0, postgres_url=url, tick_seconds=0.2) as demo:
        view, values, group = request_modal(demo, "UALICE", admin.info.dbname[:4], f"{admin.info.dbname} · database")
        assert group == "warehouse"
        assert act(demo, user="UALICE", type="submit", view_id=view["id"],
                   values=fill(view, values, "1", "monthly report")) == {}
        asked = wait_for("bob's DM", lambda: next((m for m in dm(demo, "UBOB") if m.get("blocks")), None))
        act(demo, user="UBOB", type="click", action={"type": "button", "action_id": "approve", "block_id": "d",
                                                      "value": "1"},
            container={"type": "message", "channel_id": "DUBOB", "message_ts": asked["ts"]})
        granted = wait_for("a login role in the permission's role", lambda: members_of(admin, role))
        assert re.fullmatch(r"jit_[0-9a-f]{8}_1_alice\S*", granted[0]), granted
        wait_for("the grant DM", lambda: "You have *read_only*" in texts(demo, "UALICE"))
        post(demo, "demo/time", {"do": "expire"})
        wait_for("the role dropped", lambda: not members_of(admin, role))
        wait_for("the revocation DM", lambda: "has ended" in texts(demo, "UALICE"))
        assert [e["ok"] for e in state(demo, "UALICE")["log"] if e["kind"] == "connector"] == [True, True]
