"""``store.id_sets``: a set of ids or keys bound as one parameter matches what ``in_`` matches; columns of values
bound as one parameter each read back as rows, in order (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Integer, String, select

from store.db import Database
from store.id_sets import among, rows_of
from store.models import Grant, table
from tests.bot.fixtures import START
from tests.bot.worker_process import seed_expiring_grants


def test_among_binds_a_set_as_one_parameter_and_matches_like_in(db: Database) -> None:
    ids = sorted(seed_expiring_grants(db, 5, first=START, spread=timedelta(0)))
    g = table(Grant)
    with db.read() as session:
        picked = select(g.c.id).where(among(g.c.id, [ids[3], ids[0], -1], session=session)).order_by(g.c.id)
        assert list(session.scalars(picked)) == [ids[0], ids[3]]
        assert len(picked.compile(session.get_bind()).params) == 1
        assert list(session.scalars(select(g.c.id).where(among(g.c.id, [], session=session)))) == []
        by_key = select(g.c.grantee_id).where(among(g.c.grantee_id, ["U00001", "U00004", "nobody"], session=session))
        assert sorted(session.scalars(by_key)) == ["U00001", "U00004"]
        orm = select(Grant.id).where(among(Grant.id, ids[1:3], session=session))
        assert sorted(session.scalars(orm)) == ids[1:3]


def test_rows_of_binds_columns_of_values_as_a_table_in_order(db: Database) -> None:
    rows = [(3, "grant-3-revoke"), (1, "grant-1-revoke"), (2, "it's \"quoted\" ü")]
    with db.read() as session:
        values = rows_of(grant_id=(Integer(), [r[0] for r in rows]), key=(String(200), [r[1] for r in rows]),
                         session=session)
        stmt = select(values.c.grant_id, values.c.key)
        assert [tuple(r) for r in session.execute(stmt)] == rows
        assert len(stmt.compile(session.get_bind()).params) <= 2 + (0 if db.is_postgres else 2)  # + JSON paths
