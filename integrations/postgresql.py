"""PostgreSQL connector: one short-lived LOGIN role per grant.

A grant creates the role ``jit_<installation>_<grant_id>_<slug>`` (the installation id is generated once per
installation and kept in the bot's database; the slug is the grantee's email local part, or Slack id,
lowercased to ``[a-z0-9_]``; at most 63 bytes) with a generated password and ``VALID UNTIL`` the grant's
expiry, and makes it a member of the permission's roles (``permissions.<name>.roles`` in accessbot.yml). The
role carries no privileges of its own beyond what the resource needs to be reachable (granted only when the
role does not already have them through PUBLIC or a membership, so most grants leave the catalogs alone):

- ``type: database``, ``name: <db>``: ``CONNECT`` on that database.
- ``type: schema``: ``CONNECT`` on the database and ``USAGE`` on the schema. The schema resource is named
  ``<db>.<schema>`` with ``path: <db>`` (the form discovery produces); a plain ``name: <schema>`` with
  ``path: <db>`` works too, and without a path the connector's own database is meant.
- any other type: only the role memberships; the credentials name the connector's own database.

The password never travels as SQL text: the connector sends libpq's SCRAM-SHA-256 verifier of it
(``PQencryptPasswordConn``), so it cannot appear in server logs, error messages or ``pg_stat_activity``; it is
returned once, in ``GrantResult.credentials``, and never logged.

Every role the connector makes is marked as this installation's with ``COMMENT ON ROLE``
(``accessbot installation=<id> grant=<grant id> grantee=<who>``). Grant, extend and revoke read that comment
first and refuse (without retrying) to touch a role of the same name that another installation, or a person,
made: two installations on one server, even with grants of the same id, each manage only their own roles.
Roles made before installation ids existed (``jit_<grant_id>_<slug>``, labelled ``accessbot grant <id> for
<who>``) are still revoked through the name the bot stored for them.

Revoking sets ``NOLOGIN``, terminates the role's sessions, reassigns and drops whatever the role owns (or was
granted) in every database where ``pg_shdepend`` says it has something, plus the resource's database and the
connector's own, and drops the role. Every operation is idempotent.

The connector's user must be able to do all of that: a superuser, or a role with ``CREATEROLE``, admin option
on the permission roles, membership in ``pg_signal_backend`` and the right to reassign the grant roles'
objects.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import Any, NoReturn

import psycopg
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from integrations.base import ConnectorContext, ConnectorError, GrantResult, GrantSpec, register_connector
from integrations.postgresql_roles import (
    INSTALLATION_ID,
    drop_owned,
    ensure_privilege,
    legacy_role,
    legacy_role_name_for,
    made_by,
    retry_concurrent_updates,
    role_label,
    role_name_for,
    role_statements,
)
from policy.resources import Resource, Risk

log = logging.getLogger(__name__)

STATEMENT_TIMEOUT = "30s"  # no connector call may hang the scheduler on a lock forever
SESSION_EXIT_WAIT_SECONDS = 5.0  # how long revoke waits for terminated sessions to go away


def libpq_dsn(dsn: str) -> str:
    """Accept SQLAlchemy-style URLs (``postgresql+psycopg://``) by dropping the driver part."""
    return re.sub(r"^(postgres(?:ql)?)\+[a-z0-9_]+://", r"\1://", dsn.strip())


class PostgresConnector:
    """Grants access to a PostgreSQL server as a per-grant LOGIN role (see the module docstring)."""

    shared_access = False  # a login role per grant: revoking one never touches another

    def __init__(
        self,
        name: str,
        dsn: str,
        resources: Iterable[Resource],
        *,
        discover: bool = False,
        connect_timeout: float = 5.0,
        discovered_risk: Risk = "medium",
        installation_id: str,
    ) -> None:
        self.name = name
        if not INSTALLATION_ID.fullmatch(installation_id):
            raise ConnectorError(
                f"postgresql {name}: the installation id {installation_id!r} is not 1-16 of [a-z0-9]", retryable=False
            )
        self.installation_id = installation_id
        self._dsn = libpq_dsn(dsn)
        try:
            params = conninfo_to_dict(self._dsn)
        except psycopg.Error:  # the parser's message may quote the DSN, password included
            raise ConnectorError(
                f"postgresql {name}: the DSN is not a valid connection string", retryable=False
            ) from None
        self._secret = str(params.get("password") or "")
        self._resources = list(resources)
        self._discover = discover
        self._discovered_risk: Risk = discovered_risk
        self._connect_timeout = max(2, math.ceil(connect_timeout))  # libpq takes whole seconds, at least 2

    # --- the Connector protocol ---------------------------------------------------------------------------

    def catalog(self) -> list[Resource]:
        """The static resources, plus the server's databases and this database's schemas with ``discover``."""
        resources = list(self._resources)
        if not self._discover:
            return resources
        seen = {(r.type, r.name) for r in resources}
        with self._connect("discover resources") as conn:
            try:
                own_db = conn.info.dbname
                databases = conn.execute(
                    "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY datname"
                ).fetchall()
                schemas = conn.execute(
                    "SELECT nspname FROM pg_namespace"
                    " WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY nspname"
                ).fetchall()
            except psycopg.Error as exc:
                self._fail("could not list databases and schemas", exc)
        found = [("database", db, "") for (db,) in databases]
        found += [("schema", f"{own_db}.{schema}", own_db) for (schema,) in schemas]
        for type_, name, path in found:
            if (type_, name) not in seen:
                resources.append(
                    Resource(
                        integration=self.name,
                        type=type_,
                        name=name,
                        path=path,
                        source_id=f"{type_}:{name}",
                        risk=self._discovered_risk,
                    )
                )
        return resources

    def grant(self, grant: GrantSpec) -> GrantResult:
        """Create (or reset) the grant's role with a fresh password; return the credentials to DM."""
        role = role_name_for(grant, self.installation_id)
        password = secrets.token_urlsafe(24)
        valid_until = _valid_until(grant.expires_at)
        with self._connect(f"grant role {role}") as conn:
            own_db = conn.info.dbname
            database, schema = self._target_of(grant.resource, own_db)
            host, port = conn.info.host, str(conn.info.port)
            verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
            label = role_label(grant, self.installation_id)
            statements = partial(role_statements, grant, role, verifier.decode(), valid_until, label)

            def apply() -> None:
                with conn.transaction():
                    exists = self._owned_role(conn, role, grant, "grant") is not None
                    for statement in statements(exists):
                        conn.execute(statement)
                    if grant.resource.type in ("database", "schema"):
                        ensure_privilege(conn, role, "database", database, "CONNECT")
                    if schema is not None and database == own_db:
                        ensure_privilege(conn, role, "schema", schema, "USAGE")

            try:
                retry_concurrent_updates(apply)
            except ConnectorError:
                raise
            except psycopg.Error as exc:
                self._fail(f"could not grant role {role}", exc, retryable=_is_transient(exc))
        if schema is not None and database != own_db:
            with self._connect(f"grant role {role}", database) as other:
                try:
                    retry_concurrent_updates(
                        lambda: ensure_privilege(other, role, "schema", schema, "USAGE")
                    )
                except psycopg.Error as exc:
                    self._fail(f"could not grant role {role} usage on {schema}", exc, _is_transient(exc))
        log.info("postgresql %s: granted role %s until %s", self.name, role, valid_until)
        credentials = {
            "username": role,
            "password": password,
            "host": host,
            "port": port,
            "database": database,
        }
        return GrantResult(
            external_ref=role,
            credentials=credentials,
            note=f'psql "host={host} port={port} dbname={database} user={role}" (valid until {valid_until})',
        )

    def extend(self, grant: GrantSpec, until: datetime | None) -> None:
        """Move the role's ``VALID UNTIL``; the role, its password and its sessions stay."""
        role = self._role_of(grant)
        valid_until = _valid_until(until)
        missing = ConnectorError(
            f"postgresql {self.name}: could not extend role {role}: the role does not exist", retryable=False
        )
        with self._connect(f"extend role {role}") as conn:
            try:
                with conn.transaction():
                    if self._owned_role(conn, role, grant, "extend") is None:
                        raise missing
                    conn.execute(
                        sql.SQL("ALTER ROLE {} VALID UNTIL {}").format(
                            sql.Identifier(role), sql.Literal(valid_until)
                        )
                    )
            except errors.UndefinedObject:
                raise missing from None
            except psycopg.Error as exc:
                self._fail(f"could not extend role {role}", exc, retryable=_is_transient(exc))
        log.info("postgresql %s: extended role %s until %s", self.name, role, valid_until)

    def revoke(self, grant: GrantSpec) -> None:
        """End the grant: no new logins, live sessions terminated, owned objects reassigned, role dropped."""
        role = self._role_of(grant)
        with self._connect(f"revoke role {role}") as conn:
            own_db = conn.info.dbname
            try:
                oid = self._owned_role(conn, role, grant, "drop")
                if oid is None:
                    log.info("postgresql %s: role %s is already gone", self.name, role)
                    return
                conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
                self._terminate_sessions(conn, role)
                databases = self._databases_with_dependencies(conn, oid)
                connectable = {
                    db for (db,) in conn.execute("SELECT datname FROM pg_database WHERE datallowconn")
                }
            except errors.UndefinedObject:  # dropped by a concurrent revoke
                return
            except psycopg.Error as exc:
                self._fail(f"could not disable role {role}", exc)
        databases |= {own_db, self._target_of(grant.resource, own_db)[0]}
        for database in sorted(databases & connectable):
            with self._connect(f"revoke role {role}", database) as db_conn:
                try:
                    retry_concurrent_updates(partial(drop_owned, db_conn, role))
                except errors.UndefinedObject:
                    return
                except psycopg.Error as exc:
                    self._fail(f"could not drop objects of role {role} in database {database}", exc)
        with self._connect(f"revoke role {role}") as conn:
            try:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            except psycopg.Error as exc:
                self._fail(f"could not drop role {role}", exc)
        log.info("postgresql %s: revoked role %s (grant %s)", self.name, role, grant.grant_id)

    # --- helpers ------------------------------------------------------------------------------------------

    def _owned_role(self, conn: psycopg.Connection[Any], role: str, grant: GrantSpec, action: str) -> int | None:
        """The oid of the grant's role, None when there is none; a role of that name that this installation did
        not make for this grant (its comment says so) is refused, without retrying."""
        row = conn.execute(
            "SELECT oid, shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s", (role,)
        ).fetchone()
        if row is None:
            return None
        oid, comment = row
        if made_by(comment, grant, self.installation_id) or (action != "grant" and legacy_role(role, comment, grant)):
            return int(oid)
        raise ConnectorError(
            f"postgresql {self.name}: refusing to {action} role {role}: it was not made by this installation"
            f" ({self.installation_id}) for grant {grant.grant_id}; its comment is {comment!r}",
            retryable=False,
        )

    def _role_of(self, grant: GrantSpec) -> str:
        """The grant's role; a stored external_ref is trusted only if it names a role made for this grant by this
        installation (or, from before installation ids, the grant's old ``jit_<grant_id>_`` name)."""
        if grant.external_ref is None:
            return role_name_for(grant, self.installation_id)
        ours = f"jit_{self.installation_id}_{grant.grant_id}_"
        if not grant.external_ref.startswith(ours) and grant.external_ref != legacy_role_name_for(grant):
            raise ConnectorError(
                f"postgresql {self.name}: refusing to touch role {grant.external_ref!r}:"
                f" it is not a role made for grant {grant.grant_id}",
                retryable=False,
            )
        return grant.external_ref

    def _target_of(self, resource: Resource, own_db: str) -> tuple[str, str | None]:
        """(database, schema or None) a resource names; see the module docstring for the forms."""
        if resource.type == "database":
            return resource.name, None
        if resource.type == "schema":
            if resource.path:
                return resource.path, resource.name.removeprefix(f"{resource.path}.")
            database, dot, schema = resource.name.partition(".")
            return (database, schema) if dot else (own_db, resource.name)
        return own_db, None

    def _terminate_sessions(self, conn: psycopg.Connection[Any], role: str) -> None:
        """Terminate every backend of the role and wait (briefly) until they are gone."""
        query = (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE usename = %s AND pid <> pg_backend_pid()"
        )
        terminated = len(conn.execute(query, (role,)).fetchall())
        deadline = time.monotonic() + SESSION_EXIT_WAIT_SECONDS
        while terminated and time.monotonic() < deadline:
            if conn.execute("SELECT 1 FROM pg_stat_activity WHERE usename = %s", (role,)).fetchone() is None:
                break
            time.sleep(0.05)
        if terminated:
            log.info("postgresql %s: terminated %d session(s) of role %s", self.name, terminated, role)

    def _databases_with_dependencies(self, conn: psycopg.Connection[Any], role_oid: int) -> set[str]:
        """Databases where the role owns objects or holds privileges, from the shared dependency catalog."""
        rows = conn.execute(
            "SELECT DISTINCT d.datname FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = %s",
            (role_oid,),
        ).fetchall()
        return {name for (name,) in rows}

    @contextmanager
    def _connect(self, what: str, database: str | None = None) -> Iterator[psycopg.Connection[Any]]:
        """An autocommit connection (to ``database`` instead of the DSN's when given), closed afterwards."""
        conninfo = self._dsn if database is None else make_conninfo(self._dsn, dbname=database)
        try:
            conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=self._connect_timeout)
            conn.execute("SELECT set_config('statement_timeout', %s, false)", (STATEMENT_TIMEOUT,))
        except psycopg.Error as exc:
            where = "the server" if database is None else f"database {database}"
            self._fail(f"could not connect to {where} to {what}", exc)
        with conn:
            yield conn

    def _fail(self, action: str, exc: psycopg.Error, retryable: bool = True) -> NoReturn:
        """Raise a ConnectorError naming the failed action and the server's message, secrets scrubbed."""
        detail = exc.diag.message_primary or (str(exc).splitlines() or [type(exc).__name__])[0]
        if self._secret:
            detail = detail.replace(self._secret, "***")
        raise ConnectorError(f"postgresql {self.name}: {action}: {detail}", retryable=retryable) from None


def _is_transient(exc: psycopg.Error) -> bool:
    """Errors worth retrying: all but SQL/access-rule errors (class 42: missing role, no privilege, ...).

    A duplicate role (42710) is the one class-42 error a retry cures: a concurrent grant created it first.
    """
    state = exc.sqlstate or ""
    return not state.startswith("42") or state == "42710"


def _valid_until(expires_at: datetime | None) -> str:
    """The ``VALID UNTIL`` literal: ISO 8601 in UTC, or ``infinity`` for an indefinite grant."""
    if expires_at is None:
        return "infinity"
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return expires_at.astimezone(UTC).isoformat()


@register_connector("postgresql")
def postgresql_connector(config: Any, ctx: ConnectorContext) -> PostgresConnector:
    """Factory for ``type: postgresql`` (config: name, dsn_env, discover, catalog_resources())."""
    if ctx.installation_id is None:
        raise ConnectorError(
            f"postgresql {config.name}: no installation id (the connector needs the bot's database)",
            retryable=False,
        )
    dsn = ctx.env.get(config.dsn_env)
    if not dsn:
        raise ConnectorError(
            f"postgresql {config.name}: environment variable {config.dsn_env} (the DSN) is not set",
            retryable=False,
        )
    return PostgresConnector(
        config.name,
        dsn,
        config.catalog_resources(),
        discover=config.discover,
        discovered_risk=getattr(config, "risk_level", "medium"),
        installation_id=ctx.installation_id,
    )
