"""A set of ids (or keys), or a few columns of values, as one bound parameter each: for the statements that work
on a batch of rows.

``column.in_([...])`` binds each value on its own, so SQLAlchemy coerces every one when the statement is built and
renders a placeholder for every one on each execution: a batch of 250 grants through a dozen statements pays that
3,000 times. :func:`among` sends the whole set as one parameter instead — an array on PostgreSQL
(``= ANY(:ids)``), a JSON array on SQLite (``IN (SELECT value FROM json_each(:ids))``) — and both databases still
look each value up by the column's index. :func:`rows_of` does the same for rows to insert (``INSERT … SELECT``
from them: one statement, not one per row).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, FromClause, String, any_, func, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.types import TypeEngine


def among(column: ColumnElement[Any] | QueryableAttribute[Any], values: Collection[Any], *,
          session: Session) -> ColumnElement[bool]:
    """``column`` is one of ``values`` (ints or strings), with the values bound as one parameter."""
    expression = column.expression if isinstance(column, QueryableAttribute) else column
    if session.get_bind().dialect.name == "postgresql":
        return expression == any_(literal(list(values), ARRAY(expression.type)))
    each = func.json_each(literal(json.dumps(list(values)), String())).table_valued("value")
    return expression.in_(select(each.c.value))


def rows_of(*, session: Session, **columns: tuple[TypeEngine[Any], Sequence[Any]]) -> FromClause:
    """Rows of values as a table to select from, each column (``name=(type, values)``, all of one length) bound as
    one parameter: ``unnest`` of arrays on PostgreSQL, a JSON array of rows through ``json_each`` on SQLite."""
    names = list(columns)
    if session.get_bind().dialect.name == "postgresql":
        arrays = [literal(list(values), ARRAY(kind)) for kind, values in columns.values()]
        return func.unnest(*arrays).table_valued(*names).render_derived()
    rows = json.dumps([list(row) for row in zip(*(values for _, values in columns.values()), strict=True)])
    each = func.json_each(literal(rows, String())).table_valued("value").alias()
    return select(*(
        type_coerce(func.json_extract(each.c.value, f"$[{i}]"), kind).label(name)
        for i, (name, (kind, _)) in enumerate(columns.items())
    )).subquery()
