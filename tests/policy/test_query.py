"""The resource query language: every operator on every field kind, precedence, quoting, errors."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.query import Query, QueryError, parse_query
from policy.resources import RISK_ORDER, Entitlement, Permission, Resource, Risk

ADMIN = Permission("postgresql", "admin", risk="critical")
READ_ONLY = Permission("postgresql", "read_only", risk="low")
MEMBER = Permission("slack_usergroup", "member", risk="medium")
Tags = tuple[tuple[str, str], ...]
PROD_TAGS: Tags = (("env", "prod"), ("team", "payments"), ("k8s.io/owner", "alice"))
STAGING_TAGS = (("env", "staging"), ("team", "payments"))
BI_TAGS = (("env", "prod"), ("cost-center", "bi-42"))


def entitlement(
    name: str, kind: str, path: str, sid: str, tags: Tags, risk: Risk, grant: Permission
) -> Entitlement:
    return Entitlement(Resource(grant.integration, kind, name, path, sid, tags, risk), grant)


CATALOG = [
    entitlement("db-prod", "database", "/clusters/eu/db-prod", "pg-101", PROD_TAGS, "high", ADMIN),
    entitlement(
        "db-staging", "database", "/clusters/eu/db-staging", "pg-102", STAGING_TAGS, "medium", READ_ONLY
    ),
    entitlement("oncall", "usergroup", "", "S123", (), "low", MEMBER),
    entitlement("Analytics", "schema", "/clusters/us/analytics", "pg-200", BI_TAGS, "critical", READ_ONLY),
]
ALL = {"db-prod", "db-staging", "oncall", "Analytics"}


def names(query: str) -> set[str]:
    return {e.resource.name for e in parse_query(query).filter(CATALOG)}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("integration = postgresql", ALL - {"oncall"}, id="= on integration"),
        pytest.param("integration != 'postgresql'", {"oncall"}, id="!= on integration"),
        pytest.param('resource_type in ("database", "schema")', ALL - {"oncall"}, id="in with parentheses"),
        pytest.param("resource_type not in [database]", {"oncall", "Analytics"}, id="not in with brackets"),
        pytest.param("resource_type in (usergroup,)", {"oncall"}, id="in with a trailing comma"),
        pytest.param('resource_name contains "prod"', {"db-prod"}, id="contains on name"),
        pytest.param("resource_name not contains db", {"oncall", "Analytics"}, id="not contains on name"),
        pytest.param("resource_name starts_with db-", {"db-prod", "db-staging"}, id="starts_with bare word"),
        pytest.param("resource_name ends_with 'staging'", {"db-staging"}, id="ends_with on name"),
        pytest.param("resource_name = analytics", set(), id="text comparison is case-sensitive"),
        pytest.param("resource_name = Analytics", {"Analytics"}, id="exact name"),
        pytest.param("permission = read_only", {"db-staging", "Analytics"}, id="= on permission"),
        pytest.param("permission not in (read_only, member)", {"db-prod"}, id="not in on permission"),
        pytest.param('resource_path starts_with "/clusters/eu/"', ALL - {"oncall", "Analytics"}, id="path"),
        pytest.param('resource_path = ""', {"oncall"}, id="empty string literal"),
        pytest.param("source_id in (pg-101, S123)", {"db-prod", "oncall"}, id="source_id bare words"),
        pytest.param("source_id ends_with 0", {"Analytics"}, id="bare word of digits"),
        pytest.param("resource_tag.env = prod", {"db-prod", "Analytics"}, id="tag ="),
        pytest.param("resource_tag.env != prod", {"db-staging", "oncall"}, id="missing tag matches !="),
        pytest.param("resource_tag.env in (prod, staging)", ALL - {"oncall"}, id="missing tag never in"),
        pytest.param("resource_tag.env not in (prod)", {"db-staging", "oncall"}, id="missing tag: not in"),
        pytest.param("resource_tag.env contains o", {"db-prod", "Analytics"}, id="missing tag: contains"),
        pytest.param("resource_tag.env not contains o", {"db-staging", "oncall"}, id="tag not contains"),
        pytest.param("resource_tag.env starts_with stag", {"db-staging"}, id="tag starts_with"),
        pytest.param("resource_tag.env ends_with d", {"db-prod", "Analytics"}, id="tag ends_with"),
        pytest.param("resource_tag.k8s.io/owner = alice", {"db-prod"}, id="tag key with dots and slash"),
        pytest.param("resource_tag.cost-center = bi-42", {"Analytics"}, id="tag key with a dash"),
        pytest.param("resource_tag.Env = prod", set(), id="tag keys are case-sensitive"),
        pytest.param("resource_risk = high", {"db-prod"}, id="risk ="),
        pytest.param("resource_risk = 'HIGH'", {"db-prod"}, id="risk values are case-insensitive"),
        pytest.param("resource_risk != high", ALL - {"db-prod"}, id="risk !="),
        pytest.param("resource_risk in (low, Medium)", {"db-staging", "oncall"}, id="risk in"),
        pytest.param("resource_risk not in (low, medium)", {"db-prod", "Analytics"}, id="risk not in"),
        pytest.param("resource_risk >= high", {"db-prod", "Analytics"}, id="risk >="),
        pytest.param("resource_risk > high", {"Analytics"}, id="risk >"),
        pytest.param("resource_risk < medium", {"oncall"}, id="risk <"),
        pytest.param("resource_risk <= medium", {"db-staging", "oncall"}, id="risk <="),
        pytest.param("resource_risk < low", set(), id="nothing is below low"),
        pytest.param("permission_risk >= medium", {"db-prod", "oncall"}, id="permission risk >="),
        pytest.param("permission_risk = critical", {"db-prod"}, id="permission risk ="),
        pytest.param(
            "source_id = S123 or source_id = pg-101 and permission = member", {"oncall"}, id="and > or"
        ),
        pytest.param(
            "(source_id = S123 or source_id = pg-101) and permission = admin", {"db-prod"}, id="parens"
        ),
        pytest.param(
            "not resource_tag.env = prod and resource_risk = medium", {"db-staging"}, id="not > and"
        ),
        pytest.param(
            "not (resource_tag.env = prod and resource_risk = high)", ALL - {"db-prod"}, id="not (…)"
        ),
        pytest.param("not not resource_name = oncall", {"oncall"}, id="double negation"),
        pytest.param("((resource_name = oncall))", {"oncall"}, id="nested parentheses"),
        pytest.param(
            "Source_Id NOT IN (S123) AND source_id Starts_With pg Or Not permission = admin",
            ALL,
            id="keywords are case-insensitive",
        ),
        pytest.param(
            "source_id = S123 or source_id = pg-200 or source_id = pg-101",
            ALL - {"db-staging"},
            id="or chain",
        ),
        pytest.param("resource_name = db-prod\n  and\n\tpermission = admin", {"db-prod"}, id="multi-line"),
        pytest.param("resource_name = and", set(), id="a keyword is a bare value after an operator"),
    ],
)
def test_matches(query: str, expected: set[str]) -> None:
    assert names(query) == expected


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        pytest.param('"a\\"b"', 'a"b', id="escaped double quote"),
        pytest.param("'it\\'s'", "it's", id="escaped single quote"),
        pytest.param('"it\'s"', "it's", id="single quote inside double quotes"),
        pytest.param('"back\\\\slash"', "back\\slash", id="escaped backslash"),
        pytest.param('"tab\\tnew\\nline"', "tab\tnew\nline", id="\\t and \\n"),
        pytest.param('"\\q"', "q", id="other escapes give the character"),
        pytest.param('"a and (b)"', "a and (b)", id="keywords and parentheses inside a string"),
        pytest.param("\"I'm 'quoted'\"", "I'm 'quoted'", id="mixed quotes"),
    ],
)
def test_string_literals(literal: str, value: str) -> None:
    entitlement = Entitlement(Resource("x", "t", value), READ_ONLY)
    assert parse_query(f"resource_name = {literal}").matches(entitlement)


@pytest.mark.parametrize(
    ("query", "line", "column", "message"),
    [
        pytest.param("", 1, 1, "empty query", id="empty"),
        pytest.param("  \n\t ", 1, 1, "empty query", id="blank"),
        pytest.param('resource_nmae = "x"', 1, 1, "did you mean resource_name?", id="unknown field"),
        pytest.param("resource_tags.env = a", 1, 1, "did you mean resource_tag.env?", id="misspelt tag"),
        pytest.param("colour = red", 1, 1, "the fields are integration", id="unknown field lists fields"),
        pytest.param("resource_name.x = a", 1, 1, "unknown field", id="only tags take a key"),
        pytest.param("resource_tag = a", 1, 1, "resource_tag needs a key", id="tag without key"),
        pytest.param("resource_risk.x = high", 1, 1, "no sub-fields", id="risk with a key"),
        pytest.param('resource_name is "x"', 1, 15, "an operator after 'resource_name'", id="bad operator"),
        pytest.param('resource_name == "x"', 1, 16, "single '='", id="double equals"),
        pytest.param("resource_name not x", 1, 19, "expected 'in' or 'contains' after 'not'", id="not what"),
        pytest.param(
            'resource_name = "abc', 1, 17, 'unterminated string: add the closing "', id="open string"
        ),
        pytest.param("resource_name = 'a\nb'", 1, 17, "unterminated string", id="string across lines"),
        pytest.param("resource_name =", 1, 16, "a value after '=' (got end of query)", id="no value"),
        pytest.param("resource_name = a and", 1, 22, "expected a field name after 'and'", id="dangling and"),
        pytest.param("and resource_name = a", 1, 1, "expected a field name, 'not' or '('", id="leading and"),
        pytest.param("not", 1, 4, "expected a field name after 'not'", id="lone not"),
        pytest.param("resource_name = a b", 1, 19, "expected 'and', 'or' or end of query", id="two values"),
        pytest.param(
            "(source_id = a b)", 1, 16, "expected 'and', 'or' or ')' after 'a'", id="two values in ()"
        ),
        pytest.param("resource_name = a & b", 1, 19, "unexpected character '&'", id="bad character"),
        pytest.param("(resource_name = a", 1, 1, "this '(' is never closed", id="unclosed parenthesis"),
        pytest.param("resource_name = a)", 1, 18, "this ')' has no matching '('", id="stray parenthesis"),
        pytest.param("resource_name = a\n  and resource_tpe = b", 2, 7, "resource_type", id="line 2 field"),
        pytest.param("source_id = a or\n (\n source_id = b", 2, 2, "never closed", id="line 2 paren"),
        pytest.param("source_id = a or\n\n  resource_type =", 3, 18, "expected a value", id="line 3 end"),
        pytest.param('resource_name in "a"', 1, 18, 'a list such as ("a", "b")', id="in without a list"),
        pytest.param('source_id in ("a" "b")', 1, 19, "expected ',' or ')' to end the list", id="no comma"),
        pytest.param(
            'source_id in ["a" "b"]', 1, 19, "expected ',' or ']' to end the list", id="no comma []"
        ),
        pytest.param('source_id in ("a"]', 1, 18, "expected ')' to end the list", id="mismatched brackets"),
        pytest.param("resource_name in ()", 1, 19, "expected a value after '('", id="empty list"),
        pytest.param("resource_name < a", 1, 15, "'<' compares risk levels", id="ordering on text"),
        pytest.param("resource_tag.env >= a", 1, 18, "'>=' compares risk levels", id="ordering on tag"),
        pytest.param("resource_risk contains hi", 1, 15, "not apply to risk levels", id="contains on risk"),
        pytest.param("permission_risk = hgh", 1, 19, "did you mean high?", id="unknown risk"),
        pytest.param("resource_risk in (low, extreme)", 1, 24, "unknown risk level 'extreme'", id="in list"),
    ],
)
def test_bad_queries(query: str, line: int, column: int, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert message in caught.value.message
    assert caught.value.query == query


def test_error_text_has_position_and_caret() -> None:
    with pytest.raises(ValueError) as caught:
        parse_query("resource_name = a and\n    resource_name =")
    assert str(caught.value) == (
        "line 2, column 20: expected a value after '=' (got end of query)\n"
        "      resource_name =\n"
        "                     ^"
    )


def test_error_survives_pickling() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("resource_nmae = x")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.message, copy.line, copy.column, str(copy)) == (
        caught.value.message,
        1,
        1,
        str(caught.value),
    )


def test_query_is_frozen_hashable_and_reports_fields() -> None:
    query = parse_query("resource_tag.env = prod and (resource_risk >= high or Permission = admin)")
    assert query.fields == frozenset({"resource_tag.env", "resource_risk", "permission"})
    assert query == parse_query(query.text) and len({query, parse_query(query.text)}) == 1
    assert str(query) == query.text
    with pytest.raises(dataclasses.FrozenInstanceError):
        query.text = "x"  # type: ignore[misc]


def test_filter_keeps_order_and_accepts_any_iterable() -> None:
    query = parse_query("integration = postgresql")
    assert query.filter(iter(CATALOG)) == [CATALOG[0], CATALOG[1], CATALOG[3]]
    assert [query.matches(e) for e in CATALOG] == [True, True, False, True]


# Properties over random catalogs and composed queries.
RISKS: list[Risk] = ["low", "medium", "high", "critical"]
entitlements = st.builds(
    lambda name, env, risk, permission_risk: Entitlement(
        Resource("pg", "db", name, tags=(("env", env),) if env else (), risk=risk),
        Permission("pg", "p", risk=permission_risk),
    ),
    st.sampled_from(["a", "ab", "b", "ba"]),
    st.sampled_from([None, "prod", "dev"]),
    st.sampled_from(RISKS),
    st.sampled_from(RISKS),
)
atoms = st.sampled_from(
    [
        "resource_name = a",
        "resource_name contains b",
        "resource_name starts_with a",
        "resource_name in (a, b)",
        "resource_tag.env = prod",
        "resource_tag.env != dev",
        "resource_tag.env not contains o",
        "resource_tag.env ends_with v",
        "resource_risk >= high",
        "permission_risk < medium",
        "resource_risk not in (low)",
        "permission_risk != critical",
    ]
)
queries = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.builds("not ({})".format, inner),
        st.builds("({}) and ({})".format, inner, inner),
        st.builds("({}) or ({})".format, inner, inner),
    ),
    max_leaves=8,
)


@given(queries, st.lists(entitlements, max_size=12))
def test_not_is_the_complement(text: str, catalog: list[Entitlement]) -> None:
    query, negated = parse_query(text), parse_query(f"not ({text})")
    assert all(query.matches(e) != negated.matches(e) for e in catalog)


@given(queries, queries, st.lists(entitlements, max_size=12))
def test_or_is_union_and_and_is_intersection(a: str, b: str, catalog: list[Entitlement]) -> None:
    qa, qb = parse_query(a), parse_query(b)
    either, both = parse_query(f"({a}) or ({b})"), parse_query(f"({a}) and ({b})")
    for e in catalog:
        assert either.matches(e) == (qa.matches(e) or qb.matches(e))
        assert both.matches(e) == (qa.matches(e) and qb.matches(e))


@given(st.text(st.characters(blacklist_categories=["Cs"]), max_size=20))
def test_any_text_round_trips_through_a_quoted_literal(value: str) -> None:
    literal = '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    entitlement = Entitlement(Resource("x", "t", value), READ_ONLY)
    query: Query = parse_query(f"resource_name = {literal} and resource_name contains {literal}")
    assert query.matches(entitlement)


@given(entitlements, st.sampled_from(RISKS), st.sampled_from(["<", "<=", ">", ">="]))
def test_risk_comparisons_follow_the_risk_order(entitlement: Entitlement, level: str, op: str) -> None:
    rank, wanted = RISK_ORDER[entitlement.resource.risk], RISK_ORDER[level]
    expected = {"<": rank < wanted, "<=": rank <= wanted, ">": rank > wanted, ">=": rank >= wanted}[op]
    assert parse_query(f"resource_risk {op} {level.upper()}").matches(entitlement) == expected


def test_lark_is_loaded_only_when_a_query_is_parsed() -> None:
    """~9 MB of RSS that a config without queries (and ``accessbot serve`` loading one) never needs."""
    code = (
        "import sys; import policy.query, policy.validation, bot.runtime, bot.slack.app; "
        "assert 'lark' not in sys.modules, 'imported early'; "
        "from policy.query import parse_query; parse_query('resource_tag.env = \"prod\"'); "
        "assert 'lark' in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
