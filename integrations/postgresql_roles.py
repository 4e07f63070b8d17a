"""PostgreSQL roles the connector makes: their names, the comment that marks them as this installation's, and
the statements that create them, grant them privileges and drop what they own (see
:mod:`integrations.postgresql`)."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from integrations.base import GrantSpec

MAX_IDENTIFIER_BYTES = 63
CONCURRENT_UPDATE_ATTEMPTS = 5
INSTALLATION_ID = re.compile(r"[a-z0-9]{1,16}")
LABEL = re.compile(r"accessbot installation=(?P<installation>[a-z0-9]+) grant=(?P<grant>[0-9]+)(?: .*)?", re.S)


def role_name_for(grant: GrantSpec, installation_id: str) -> str:
    """The role a grant gets: ``jit_<installation>_<grant_id>_<slug>``, a safe lowercase identifier of at most
    63 bytes."""
    return _role_name(f"jit_{installation_id}_{grant.grant_id}_", grant)


def role_label(grant: GrantSpec, installation_id: str) -> str:
    """The ``COMMENT ON ROLE`` that marks a role as this installation's, for this grant."""
    return f"accessbot installation={installation_id} grant={grant.grant_id} grantee={_grantee(grant)}"


def made_by(comment: str | None, grant: GrantSpec, installation_id: str) -> bool:
    """Does a role's comment say this installation made it for this grant?"""
    match = LABEL.fullmatch(comment or "")
    return match is not None and match["installation"] == installation_id and int(match["grant"]) == grant.grant_id


def legacy_role(role: str, comment: str | None, grant: GrantSpec) -> bool:
    """A role made for this grant before installation ids: the old name and the old label."""
    return role == legacy_role_name_for(grant) and (
        comment == f"accessbot grant {grant.grant_id} for {_grantee(grant)}"
    )


def _grantee(grant: GrantSpec) -> str:
    return grant.grantee_email or grant.grantee_slack_id


def legacy_role_name_for(grant: GrantSpec) -> str:
    """The name roles had before installation ids: ``jit_<grant_id>_<slug>``."""
    return _role_name(f"jit_{grant.grant_id}_", grant)


def _role_name(prefix: str, grant: GrantSpec) -> str:
    source = (grant.grantee_email or "").partition("@")[0] or grant.grantee_slack_id
    slug = re.sub(r"[^a-z0-9]+", "_", source.lower()).strip("_")
    slug = slug[: MAX_IDENTIFIER_BYTES - len(prefix)].rstrip("_") or "user"
    return prefix + slug


def role_statements(
    grant: GrantSpec, role: str, verifier: str, valid_until: str, label: str, exists: bool
) -> list[sql.Composed]:
    """Create the role (or reset an existing one of ours), mark it as ours, and make it a member of the roles."""
    verb = sql.SQL("ALTER" if exists else "CREATE")
    statements = [
        sql.SQL(
            "{} ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT"
            " PASSWORD {} VALID UNTIL {}"
        ).format(verb, sql.Identifier(role), sql.Literal(verifier), sql.Literal(valid_until)),
        sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(role), sql.Literal(label)),
    ]
    statements += [grant_to(sql.Identifier(member_of), role) for member_of in grant.permission.roles]
    return statements


def grant_to(what: sql.Composable, role: str) -> sql.Composed:
    return sql.SQL("GRANT {} TO {}").format(what, sql.Identifier(role))


def ensure_privilege(
    conn: psycopg.Connection[Any], role: str, kind: str, target: str, privilege: str
) -> None:
    """Grant ``privilege`` on a database or schema unless the role already has it (through PUBLIC or a
    membership): most servers let PUBLIC connect, and not touching the catalog row spares concurrent grants
    a "tuple concurrently updated" error."""
    check = {"database": "has_database_privilege", "schema": "has_schema_privilege"}[kind]
    row = conn.execute(
        sql.SQL("SELECT {}(%s, %s, %s)").format(sql.Identifier(check)), (role, target, privilege)
    ).fetchone()
    if not (row and row[0]):
        on = sql.SQL("{} ON {} {}").format(sql.SQL(privilege), sql.SQL(kind.upper()), sql.Identifier(target))
        conn.execute(grant_to(on, role))


def drop_owned(conn: psycopg.Connection[Any], role: str) -> None:
    """Hand the role's objects in this database to the connector's user, then drop its privileges."""
    with conn.transaction():
        conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))


def retry_concurrent_updates(run: Callable[[], None]) -> None:
    """Run a catalog-changing transaction, again when a concurrent change of the same catalog row (two
    grants on one database, say) made PostgreSQL give up with "tuple concurrently updated" or a deadlock."""
    for attempt in range(1, CONCURRENT_UPDATE_ATTEMPTS + 1):
        try:
            run()
            return
        except psycopg.Error as exc:
            concurrent = exc.sqlstate in ("40001", "40P01") or (
                exc.sqlstate == "XX000" and "concurrently" in (exc.diag.message_primary or "")
            )
            if not concurrent or attempt == CONCURRENT_UPDATE_ATTEMPTS:
                raise
            time.sleep(random.uniform(0.02, 0.1) * attempt)
