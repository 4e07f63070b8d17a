"""``store.id_sets.among``: a set of ids or keys bound as one parameter matches what ``in_`` matches (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from store.db import Database
from store.id_sets import among
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
