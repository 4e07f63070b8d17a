"""A set of ids (or keys) as one bound parameter, for the statements that work on a batch of rows.

``column.in_([...])`` binds each value on its own, so SQLAlchemy coerces every one when the statement is built and
renders a placeholder for every one on each execution: a batch of 250 grants through a dozen statements pays that
3,000 times. :func:`among` sends the whole set as one parameter instead — an array on PostgreSQL
(``= ANY(:ids)``), a JSON array on SQLite (``IN (SELECT value FROM json_each(:ids))``) — and both databases still
look each value up by the column's index.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, String, any_, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import QueryableAttribute, Session


def among(column: ColumnElement[Any] | QueryableAttribute[Any], values: Collection[Any], *,
          session: Session) -> ColumnElement[bool]:
    """``column`` is one of ``values`` (ints or strings), with the values bound as one parameter."""
    expression = column.expression if isinstance(column, QueryableAttribute) else column
    if session.get_bind().dialect.name == "postgresql":
        return expression == any_(literal(list(values), ARRAY(expression.type)))
    each = func.json_each(literal(json.dumps(list(values)), String())).table_valued("value")
    return expression.in_(select(each.c.value))
