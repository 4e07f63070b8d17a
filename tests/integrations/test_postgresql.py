"""The PostgreSQL connector against a real server (``ACCESSBOT_TEST_POSTGRES_URL``).

Every role, schema and table made here carries a random suffix, and grant ids are random, so developers can
run these tests against one shared server at once; the sandbox fixture removes everything it made.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import random
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from integrations.base import ConnectorContext, ConnectorError, GrantResult, GrantSpec, connector_factory
from integrations.postgresql import PostgresConnector, libpq_dsn, role_name_for
from policy.resources import Permission, Resource

pytestmark = pytest.mark.postgres

INTEGRATION = "test-pg"


@dataclass
class Sandbox:
    """A schema with an ``allowed`` and a ``secret`` table, and the roles permissions map to."""

    dsn: str
    admin: psycopg.Connection[Any]
    suffix: str
    database: str
    schema: str
    ro_role: str  # SELECT on allowed
    rw_role: str  # SELECT, INSERT on allowed; CREATE in the schema
    installation: str = field(default_factory=lambda: secrets.token_hex(4))
    grant_ids: list[int] = field(default_factory=list)

    def connector(self, resources: list[Resource] | None = None, **kwargs: Any) -> PostgresConnector:
        kwargs.setdefault("installation_id", self.installation)
        resources = [self.database_resource()] if resources is None else resources
        return PostgresConnector(INTEGRATION, self.dsn, resources, **kwargs)

    def role(self, spec: GrantSpec) -> str:
        return role_name_for(spec, self.installation)

    def comment(self, role: str) -> str | None:
        row = self.admin.execute(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s", (role,)
        ).fetchone()
        assert row is not None, f"role {role} exists"
        return row[0]

    def database_resource(self) -> Resource:
        return Resource(integration=INTEGRATION, type="database", name=self.database)

    def spec(
        self,
        *,
        roles: tuple[str, ...] | None = None,
        resource: Resource | None = None,
        expires_at: datetime | None = None,
        external_ref: str | None = None,
        grant_id: int | None = None,
    ) -> GrantSpec:
        if grant_id is None:
            grant_id = random.randint(10**9, 2 * 10**9)
            self.grant_ids.append(grant_id)
        return GrantSpec(
            grant_id=grant_id,
            request_id=1,
            grantee_slack_id="U0ALICE",
            grantee_email=f"alice.{self.suffix}@example.com",
            integration=INTEGRATION,
            resource=resource or self.database_resource(),
            permission=Permission(
                integration=INTEGRATION, name="read_only", roles=(self.ro_role,) if roles is None else roles
            ),
            expires_at=expires_at,
            external_ref=external_ref,
        )

    def role_exists(self, role: str) -> bool:
        return self.admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None

    def valid_until(self, role: str) -> Any:
        row = self.admin.execute(
            "SELECT rolvaliduntil = 'infinity', CASE WHEN rolvaliduntil <> 'infinity' THEN rolvaliduntil END"
            " FROM pg_roles WHERE rolname = %s",
            (role,),
        ).fetchone()
        assert row is not None
        return "infinity" if row[0] else row[1]

    def login(self, result: GrantResult) -> psycopg.Connection[Any]:
        c = result.credentials
        return psycopg.connect(
            host=c["host"],
            port=c["port"],
            dbname=c["database"],
            user=c["username"],
            password=c["password"],
            autocommit=True,
        )


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    url = os.environ.get("ACCESSBOT_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("ACCESSBOT_TEST_POSTGRES_URL is not set")
    dsn = libpq_dsn(url)
    suffix = secrets.token_hex(4)
    admin = psycopg.connect(dsn, autocommit=True)
    box = Sandbox(
        dsn=dsn,
        admin=admin,
        suffix=suffix,
        database=admin.info.dbname,
        schema=f"acb_{suffix}",
        ro_role=f"acb_ro_{suffix}",
        rw_role=f"acb_rw_{suffix}",
    )
    schema, ro, rw = sql.Identifier(box.schema), sql.Identifier(box.ro_role), sql.Identifier(box.rw_role)
    for statement in (
        sql.SQL("CREATE SCHEMA {}").format(schema),
        sql.SQL("CREATE TABLE {}.allowed (id int, note text)").format(schema),
        sql.SQL("CREATE TABLE {}.secret (id int)").format(schema),
        sql.SQL("INSERT INTO {}.allowed VALUES (1, 'hello')").format(schema),
        sql.SQL("CREATE ROLE {} NOLOGIN").format(ro),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, ro),
        sql.SQL("GRANT SELECT ON {}.allowed TO {}").format(schema, ro),
        sql.SQL("CREATE ROLE {} NOLOGIN").format(rw),
        sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(schema, rw),
        sql.SQL("GRANT SELECT, INSERT ON {}.allowed TO {}").format(schema, rw),
    ):
        admin.execute(statement)
    try:
        yield box
    finally:
        _clean_up(box)
        admin.close()


def _clean_up(box: Sandbox) -> None:
    """Drop whatever a test left: grant roles (even half-revoked ones), the schema, the permission roles."""
    patterns = [p for grant_id in box.grant_ids for p in (f"jit\\_{grant_id}\\_%", f"jit\\_%\\_{grant_id}\\_%")]
    leftovers = [
        r
        for (r,) in box.admin.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE ANY(%s)", (patterns,))
    ]
    for role in [*leftovers, box.ro_role, box.rw_role]:
        if not box.role_exists(role):
            continue
        box.admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )
        box.admin.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(sql.Identifier(role)))
        box.admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        box.admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    box.admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(box.schema)))


def _in_an_hour() -> datetime:
    return (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)


def _scram_verifies(verifier: str, password: str) -> bool:
    """Does a stored SCRAM-SHA-256 verifier (pg_authid.rolpassword) belong to this password? (RFC 5802)"""
    match = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)", verifier)
    assert match, "the password is stored as a SCRAM-SHA-256 verifier"
    iterations, salt, stored_key = int(match[1]), base64.b64decode(match[2]), match[3]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key


def test_grant_makes_a_login_role_that_reads_only_what_its_permission_allows(sandbox: Sandbox) -> None:
    spec = sandbox.spec(expires_at=_in_an_hour())
    result = sandbox.connector().grant(spec)

    role = sandbox.role(spec)
    assert result.external_ref == role == f"jit_{sandbox.installation}_{spec.grant_id}_alice_{sandbox.suffix}"
    assert sandbox.comment(role) == (
        f"accessbot installation={sandbox.installation} grant={spec.grant_id} grantee={spec.grantee_email}"
    )
    assert result.credentials["username"] == role
    assert result.credentials["database"] == sandbox.database
    assert result.credentials["password"] not in result.note
    stored = sandbox.admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
    assert stored is not None and _scram_verifies(stored[0], result.credentials["password"])

    with sandbox.login(result) as conn:
        assert conn.execute(f"SELECT note FROM {sandbox.schema}.allowed").fetchall() == [("hello",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"INSERT INTO {sandbox.schema}.allowed VALUES (2, 'no')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"SELECT * FROM {sandbox.schema}.secret")


def test_valid_until_is_the_expiry_and_extend_moves_it(sandbox: Sandbox) -> None:
    connector = sandbox.connector()
    expires_at = _in_an_hour()
    spec = sandbox.spec(expires_at=expires_at)
    role = connector.grant(spec).external_ref
    assert role is not None
    assert sandbox.valid_until(role) == expires_at

    later = expires_at + timedelta(minutes=30)
    connector.extend(spec, later)
    assert sandbox.valid_until(role) == later

    connector.extend(spec, None)
    assert sandbox.valid_until(role) == "infinity"


def test_indefinite_grant_is_valid_forever(sandbox: Sandbox) -> None:
    spec = sandbox.spec(expires_at=None)
    sandbox.connector().grant(spec)
    assert sandbox.valid_until(sandbox.role(spec)) == "infinity"


def test_revoke_ends_open_sessions_and_drops_the_role_and_its_objects(sandbox: Sandbox) -> None:
    connector = sandbox.connector()
    spec = sandbox.spec(roles=(sandbox.rw_role,), expires_at=_in_an_hour())
    result = connector.grant(spec)
    role = result.external_ref
    assert role is not None
    session = sandbox.login(result)
    session.execute(f"CREATE TABLE {sandbox.schema}.made_by_grantee (id int)")
    assert session.execute("SELECT 1").fetchone() == (1,)

    connector.revoke(replace(spec, external_ref=role))

    with pytest.raises(psycopg.OperationalError):
        session.execute("SELECT 1")
    session.close()
    assert not sandbox.role_exists(role)
    owner = sandbox.admin.execute(
        "SELECT tableowner FROM pg_tables WHERE schemaname = %s AND tablename = 'made_by_grantee'",
        (sandbox.schema,),
    ).fetchone()
    assert owner == (sandbox.admin.info.user,), "the grantee's table is kept, owned by the connector's user"


@pytest.fixture
def closed_database(sandbox: Sandbox) -> Iterator[str]:
    """A database of its own that PUBLIC may not connect to (as on hardened servers)."""
    name = f"acb_db_{sandbox.suffix}"
    sandbox.admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        sandbox.admin.execute(
            sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name))
        )
        yield name
    finally:
        sandbox.admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _connect_acl(sandbox: Sandbox, database: str, role: str) -> int:
    row = sandbox.admin.execute(
        "SELECT count(*) FROM pg_database d, aclexplode(d.datacl) a"
        " WHERE d.datname = %s AND a.grantee = to_regrole(%s) AND a.privilege_type = 'CONNECT'",
        (database, role),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_database_closed_to_public_gets_connect_for_the_grant_only(
    sandbox: Sandbox, closed_database: str
) -> None:
    connector = sandbox.connector()
    spec = sandbox.spec(
        roles=(), resource=Resource(integration=INTEGRATION, type="database", name=closed_database)
    )
    result = connector.grant(spec)
    role = sandbox.role(spec)
    assert result.credentials["database"] == closed_database
    assert _connect_acl(sandbox, closed_database, role) == 1
    assert _connect_acl(sandbox, sandbox.database, role) == 0, "PUBLIC may connect there: nothing to grant"
    with sandbox.login(result) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (closed_database,)

    connector.revoke(spec)
    assert not sandbox.role_exists(role)
    acl = sandbox.admin.execute("SELECT datacl::text FROM pg_database WHERE datname = %s", (closed_database,))
    assert role not in str(acl.fetchone())


def test_revoke_reassigns_objects_in_every_database_the_role_owns_something_in(
    sandbox: Sandbox, closed_database: str
) -> None:
    connector = sandbox.connector()
    spec = sandbox.spec(expires_at=_in_an_hour())
    role = connector.grant(spec).external_ref
    assert role is not None
    with psycopg.connect(sandbox.dsn, dbname=closed_database, autocommit=True) as other:
        other.execute("CREATE TABLE handed_over (id int)")
        other.execute(sql.SQL("ALTER TABLE handed_over OWNER TO {}").format(sql.Identifier(role)))

        connector.revoke(spec)

        assert not sandbox.role_exists(role)
        owner = other.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'handed_over'").fetchone()
        assert owner == (sandbox.admin.info.user,)


def test_granting_twice_and_revoking_twice_are_harmless(sandbox: Sandbox) -> None:
    connector = sandbox.connector()
    spec = sandbox.spec(expires_at=_in_an_hour())
    first = connector.grant(spec)
    second = connector.grant(spec)

    assert first.external_ref == second.external_ref
    assert first.credentials["password"] != second.credentials["password"]
    stored = sandbox.admin.execute(
        "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (second.external_ref,)
    ).fetchone()
    assert stored is not None and _scram_verifies(stored[0], second.credentials["password"])
    with sandbox.login(second) as conn:
        assert conn.execute(f"SELECT count(*) FROM {sandbox.schema}.allowed").fetchone() == (1,)

    connector.revoke(spec)
    connector.revoke(spec)
    assert second.external_ref is not None and not sandbox.role_exists(second.external_ref)


def test_schema_resource_grants_usage_on_the_schema(sandbox: Sandbox) -> None:
    resource = Resource(
        integration=INTEGRATION,
        type="schema",
        name=f"{sandbox.database}.{sandbox.schema}",
        path=sandbox.database,
    )
    spec = sandbox.spec(roles=(), resource=resource, expires_at=_in_an_hour())
    result = sandbox.connector().grant(spec)

    assert result.credentials["database"] == sandbox.database
    row = sandbox.admin.execute(
        "SELECT has_schema_privilege(%s, %s, 'USAGE')", (result.external_ref, sandbox.schema)
    ).fetchone()
    assert row == (True,)


def test_discovery_lists_databases_and_schemas_besides_the_static_resources(sandbox: Sandbox) -> None:
    static = Resource(integration=INTEGRATION, type="database", name="billing", tags=(("env", "prod"),))
    connector = sandbox.connector([static], discover=True, discovered_risk="high")

    catalog = connector.catalog()

    assert catalog[0] == static
    by_key = {(r.type, r.name): r for r in catalog}
    assert ("database", sandbox.database) in by_key
    schema = by_key[("schema", f"{sandbox.database}.{sandbox.schema}")]
    assert schema.path == sandbox.database and schema.risk == "high"
    assert not any(r.name.split(".")[-1].startswith("pg_") for r in catalog if r.type == "schema")
    assert sandbox.connector([static]).catalog() == [static]


def test_credentials_never_reach_logs_or_errors(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    connector = sandbox.connector()
    spec = sandbox.spec(expires_at=_in_an_hour())
    password = connector.grant(spec).credentials["password"]
    connector.grant(spec)
    connector.extend(spec, _in_an_hour() + timedelta(hours=1))
    connector.revoke(spec)
    assert password not in caplog.text

    missing_role = f"acb_missing_{sandbox.suffix}"
    broken = sandbox.spec(roles=(missing_role,), expires_at=_in_an_hour())
    with pytest.raises(ConnectorError) as failed:
        connector.grant(broken)
    assert missing_role in str(failed.value) and not failed.value.retryable
    assert not sandbox.role_exists(sandbox.role(broken)), "a failed grant leaves no half-made role"

    unreachable = PostgresConnector(
        INTEGRATION, "postgresql://bot:hunter2-sekrit@127.0.0.1:1/db", [], installation_id="i1"
    )
    with pytest.raises(ConnectorError) as refused:
        unreachable.grant(sandbox.spec())
    assert "hunter2-sekrit" not in str(refused.value) and refused.value.retryable
    assert "could not connect" in str(refused.value)

    with pytest.raises(ConnectorError) as invalid:
        PostgresConnector(INTEGRATION, "host=db password=hunter2-sekrit oops", [], installation_id="i1")
    assert "hunter2-sekrit" not in str(invalid.value)
    assert "hunter2-sekrit" not in caplog.text


def test_extend_of_a_missing_role_fails_and_foreign_refs_are_refused(sandbox: Sandbox) -> None:
    connector = sandbox.connector()
    with pytest.raises(ConnectorError, match="does not exist"):
        connector.extend(sandbox.spec(), _in_an_hour())
    with pytest.raises(ConnectorError, match="refusing") as refused:
        connector.revoke(sandbox.spec(external_ref=sandbox.ro_role))
    assert not refused.value.retryable
    assert sandbox.role_exists(sandbox.ro_role)


def test_factory_reads_the_dsn_from_the_environment(sandbox: Sandbox) -> None:
    @dataclass
    class Config:
        name: str = INTEGRATION
        dsn_env: str = "TEST_PG_DSN"
        discover: bool = True

        def catalog_resources(self) -> list[Resource]:
            return []

    factory = connector_factory("postgresql")
    sqlalchemy_url = os.environ["ACCESSBOT_TEST_POSTGRES_URL"]
    context = ConnectorContext(env={"TEST_PG_DSN": sqlalchemy_url}, installation_id=sandbox.installation)
    connector = factory(Config(), context)
    assert ("database", sandbox.database) in {(r.type, r.name) for r in connector.catalog()}

    with pytest.raises(ConnectorError, match="TEST_PG_DSN") as missing:
        factory(Config(), ConnectorContext(env={}, installation_id=sandbox.installation))
    assert not missing.value.retryable
    with pytest.raises(ConnectorError, match="no installation id") as unwired:
        factory(Config(), ConnectorContext(env={"TEST_PG_DSN": sqlalchemy_url}))
    assert not unwired.value.retryable
    with pytest.raises(ConnectorError, match="installation id 'Not-An-Id!'"):
        factory(Config(), ConnectorContext(env={"TEST_PG_DSN": sqlalchemy_url}, installation_id="Not-An-Id!"))


@pytest.mark.parametrize(
    ("email", "slack_id", "expected"),
    [
        ("alice@example.com", "U1", "jit_0a1b2c3d_12_alice"),
        ("Alice.O'Neil+ops@example.com", "U1", "jit_0a1b2c3d_12_alice_o_neil_ops"),
        (None, "U0ABC", "jit_0a1b2c3d_12_u0abc"),
        ("ünïcode@example.com", "U1", "jit_0a1b2c3d_12_n_code"),
        ("@example.com", "U0X", "jit_0a1b2c3d_12_u0x"),
        ("---@example.com", "U1", "jit_0a1b2c3d_12_user"),
    ],
)
def test_role_names_are_safe_identifiers(email: str | None, slack_id: str, expected: str) -> None:
    spec = GrantSpec(
        grant_id=12,
        request_id=1,
        grantee_slack_id=slack_id,
        grantee_email=email,
        integration=INTEGRATION,
        resource=Resource(integration=INTEGRATION, type="database", name="db"),
        permission=Permission(integration=INTEGRATION, name="read_only"),
        expires_at=None,
    )
    assert role_name_for(spec, "0a1b2c3d") == expected


def test_long_role_names_fit_in_63_bytes() -> None:
    spec = GrantSpec(
        grant_id=123456789012,
        request_id=1,
        grantee_slack_id="U1",
        grantee_email="a" * 40 + "_" + "b" * 40 + "@example.com",
        integration=INTEGRATION,
        resource=Resource(integration=INTEGRATION, type="database", name="db"),
        permission=Permission(integration=INTEGRATION, name="read_only"),
        expires_at=None,
    )
    name = role_name_for(spec, "0a1b2c3d")
    assert len(name.encode()) <= 63 and re.fullmatch(r"jit_0a1b2c3d_123456789012_[a-z0-9_]*[a-z0-9]", name)


def test_two_installations_on_one_server_each_revoke_only_their_own_roles(sandbox: Sandbox) -> None:
    a = sandbox.connector(installation_id=f"a{sandbox.suffix}")
    b = sandbox.connector(installation_id=f"b{sandbox.suffix}")
    same_id = sandbox.spec(expires_at=_in_an_hour())  # both installations have a grant with this id
    only_b = sandbox.spec(expires_at=_in_an_hour())
    a_result, b_result, b_other = a.grant(same_id), b.grant(same_id), b.grant(only_b)
    a_role, b_role = a_result.external_ref, b_result.external_ref
    assert a_role and b_role and a_role != b_role
    assert sandbox.comment(b_role) == (
        f"accessbot installation=b{sandbox.suffix} grant={same_id.grant_id} grantee={same_id.grantee_email}"
    )
    b_session = sandbox.login(b_result)

    a.revoke(replace(same_id, external_ref=a_role))
    a.revoke(only_b)  # a grant id A never made a role for: nothing of B's goes
    with pytest.raises(ConnectorError, match="refusing") as foreign:
        a.revoke(replace(only_b, external_ref=b_other.external_ref))  # B's stored name handed to A
    assert not foreign.value.retryable

    assert not sandbox.role_exists(a_role)
    assert sandbox.role_exists(b_role) and b_other.external_ref and sandbox.role_exists(b_other.external_ref)
    assert b_session.execute(f"SELECT note FROM {sandbox.schema}.allowed").fetchall() == [("hello",)]
    b_session.close()

    b.revoke(replace(same_id, external_ref=b_role))
    b.revoke(only_b)
    assert not sandbox.role_exists(b_role) and not sandbox.role_exists(b_other.external_ref)


def test_a_role_of_that_name_made_by_someone_else_is_never_taken_over_or_dropped(sandbox: Sandbox) -> None:
    connector = sandbox.connector()
    spec = sandbox.spec(expires_at=_in_an_hour())
    role = sandbox.role(spec)
    sandbox.admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'theirs'").format(sql.Identifier(role)))
    sandbox.admin.execute(sql.SQL("COMMENT ON ROLE {} IS 'made by the DBA'").format(sql.Identifier(role)))
    before = sandbox.admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()

    for attempt in (
        lambda: connector.grant(spec),
        lambda: connector.extend(spec, _in_an_hour()),
        lambda: connector.revoke(spec),
    ):
        with pytest.raises(ConnectorError, match=f"refusing to .* role {role}: it was not made by this") as refused:
            attempt()
        assert not refused.value.retryable and "made by the DBA" in str(refused.value)

    assert sandbox.comment(role) == "made by the DBA"
    after = sandbox.admin.execute("SELECT rolpassword, rolcanlogin FROM pg_authid WHERE rolname = %s", (role,))
    assert after.fetchone() == (before[0] if before else None, True), "password and LOGIN untouched"


def test_roles_made_before_installation_ids_are_still_revoked_by_their_stored_name(sandbox: Sandbox) -> None:
    connector = sandbox.connector()
    spec = sandbox.spec(expires_at=_in_an_hour())
    legacy = f"jit_{spec.grant_id}_alice_{sandbox.suffix}"
    forged = sandbox.spec(expires_at=_in_an_hour())
    forged_legacy = f"jit_{forged.grant_id}_alice_{sandbox.suffix}"
    for role, label in ((legacy, f"accessbot grant {spec.grant_id} for {spec.grantee_email}"),
                        (forged_legacy, "someone's own role")):
        sandbox.admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        sandbox.admin.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(role), sql.Literal(label)))

    connector.revoke(replace(spec, external_ref=legacy))
    assert not sandbox.role_exists(legacy)
    with pytest.raises(ConnectorError, match="refusing to drop"):
        connector.revoke(replace(forged, external_ref=forged_legacy))
    assert sandbox.role_exists(forged_legacy)
