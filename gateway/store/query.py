"""Compile a ``SearchRequest`` to SQL over the search index and run it.

Every criterion becomes ``r.rid IN (SELECT rid FROM idx_<type> WHERE ...)``; values of one
parameter are ORed inside the subquery, criteria are ANDed. Pages use keyset cursors on
(sort keys..., rid), so each match is returned exactly once while data changes between pages.
Date comparisons follow search.html#prefix on ranges: a value is an interval [low, high].

The SQL is written as text with positional parameters, built in one left-to-right pass and
run on the DB-API cursor of the caller's connection (inside its transaction). Search is the
second most frequent request; building the same statement as SQLAlchemy Core expressions cost
several times the query itself. Only identifiers from our own schema are ever spliced into
the text; every value is a bound parameter. The one compiler serves the REST search, the
conditional interactions and subscription matching alike.
"""

from __future__ import annotations

import base64
import sqlite3
from dataclasses import dataclass, field
from itertools import count as counter
from typing import Any

import orjson
import psycopg
from sqlalchemy.engine import Connection

from gateway.errors import InvalidRequest
from gateway.fhir.dates import INFINITY
from gateway.search.request import Criterion, Include, SearchRequest
from gateway.search.values import Value
from gateway.store.access import visible_sql
from gateway.store.indexer import normalize
from gateway.store.tables import INDEX_TABLES

# Where the read queries run: the caller's SQLAlchemy connection (its transaction), or the
# reader's own DB-API connection inside ``Reader.snapshot()`` (SQLite or PostgreSQL).
Queryable = Connection | sqlite3.Connection | psycopg.Connection[Any]
# A fragment of SQL text and its positional parameters, in textual order.
Sql = tuple[str, list[Any]]
_TRUE: Sql = ("1=1", [])
_FALSE: Sql = ("1=0", [])
_ESCAPE = "\\"


def _and(parts: list[Sql]) -> Sql:
    parts = [p for p in parts if p is not _TRUE]
    if not parts:
        return _TRUE
    if len(parts) == 1:
        return parts[0]
    return "(" + " AND ".join(p[0] for p in parts) + ")", [v for p in parts for v in p[1]]


def _or(parts: list[Sql]) -> Sql:
    if not parts:
        return _FALSE
    if len(parts) == 1:
        return parts[0]
    return "(" + " OR ".join(p[0] for p in parts) + ")", [v for p in parts for v in p[1]]


def _not(part: Sql) -> Sql:
    return f"NOT {part[0]}", part[1]


def _in_list(column: str, values: list[Any]) -> Sql:
    if not values:
        return _FALSE
    return f"{column} IN ({', '.join('?' * len(values))})", list(values)


# -- criteria ------------------------------------------------------------------------------

class _Compiler:
    """Names the table aliases of one statement (``i1``, ``c2``...) so nested subqueries
    never capture each other's columns."""

    def __init__(self) -> None:
        self._numbers = counter(1)

    def alias(self, prefix: str) -> str:
        return f"{prefix}{next(self._numbers)}"

    def criteria(self, request: SearchRequest, alias: str, resource_type: str) -> Sql:
        return _and([self.criterion(c, resource_type, alias) for c in request.criteria])

    def criterion(self, criterion: Criterion, resource_type: str, alias: str) -> Sql:
        param = criterion.param
        if param.code == "_id":
            ids = _in_list(f"{alias}.id", [v.raw for v in criterion.values])
            return _not(ids) if criterion.modifier == "not" else ids
        if param.code == "_lastUpdated":
            column = f"{alias}.last_updated"
            return _or([_date_match(v, column, column) for v in criterion.values])
        table = INDEX_TABLES[param.type].name
        i = self.alias("i")
        head = (f"{alias}.rid IN (SELECT {i}.rid FROM {table} {i} "
                f"WHERE {i}.type = ? AND {i}.param = ?")
        scope = [resource_type, param.code]
        if criterion.missing is not None:
            text = head + ")"
            return (f"NOT {text}" if criterion.missing else text), scope
        if criterion.chain:
            matches = self._chain(criterion, i)
        elif param.type == "token" and criterion.modifier == "not":
            matches = _or([_token_match(v, i) for v in criterion.values])
            return f"NOT {head} AND {matches[0]})", scope + matches[1]
        else:
            matches = _or([_value_match(criterion, v, i) for v in criterion.values])
        return f"{head} AND {matches[0]})", scope + matches[1]

    def _chain(self, criterion: Criterion, i: str) -> Sql:
        alternatives = []
        for target_type, inner in zip(criterion.target_types, criterion.chain, strict=True):
            c = self.alias("c")
            condition = self.criterion(inner, target_type, c)
            alternatives.append((
                f"({i}.target_type = ? AND {i}.target_id IN (SELECT {c}.id FROM resource {c} "
                f"WHERE {c}.type = ? AND {c}.deleted = ? AND {condition[0]}))",
                [target_type, target_type, False, *condition[1]]))
        return _or(alternatives)


def criteria_sql(request: SearchRequest, alias: str = "r",
                 resource_type: str | None = None) -> Sql:
    """The WHERE condition (over ``resource`` as ``alias``) for all criteria of a request."""
    return _Compiler().criteria(request, alias, resource_type or request.resource_type)


def _value_match(criterion: Criterion, value: Value, i: str) -> Sql:
    kind = criterion.param.type
    if kind == "token":
        return _token_match(value, i)
    if kind == "string":
        return _string_match(criterion.modifier, value, i)
    if kind == "reference":
        return _reference_match(criterion, value, i)
    if kind == "date":
        return _date_match(value, f"{i}.low", f"{i}.high")
    if kind in ("number", "quantity"):
        return _number_match(kind, value, i)
    return _uri_match(criterion.modifier, value, i)


def _token_match(value: Value, i: str) -> Sql:
    conditions: list[Sql] = []
    if value.code is not None:
        conditions.append((f"{i}.code = ?", [value.code]))
    if value.has_system and value.system is None:
        conditions.append((f"({i}.system = '' OR {i}.system IS NULL)", []))
    elif value.has_system:
        # Primitive codes are indexed with the system their binding implies (NULL when
        # none is known); a query naming a system matches only that system.
        conditions.append((f"{i}.system = ?", [value.system]))
    if not conditions:
        raise InvalidRequest(f"Empty token value {value.raw!r}.")
    return _and(conditions)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(column: str, pattern: str) -> Sql:
    return f"{column} LIKE ? ESCAPE ?", [pattern, _ESCAPE]


def _string_match(modifier: str | None, value: Value, i: str) -> Sql:
    if modifier == "exact":
        return f"{i}.exact = ?", [value.raw]
    needle = _like_escape(normalize(value.raw))
    if modifier == "contains":
        return _like(f"{i}.value", f"%{needle}%")
    return _like(f"{i}.value", f"{needle}%")


def _reference_match(criterion: Criterion, value: Value, i: str) -> Sql:
    if value.url is not None:
        return f"{i}.url = ?", [value.url]
    wanted = value.ref_type or (criterion.target_types[0] if criterion.target_types else None)
    if value.ref_type and criterion.target_types and value.ref_type not in criterion.target_types:
        return _FALSE
    conditions: list[Sql] = [(f"{i}.target_id = ?", [value.ref_id])]
    if wanted:
        conditions.append((f"{i}.target_type = ?", [wanted]))
    return _and(conditions)


def _date_match(value: Value, low: str, high: str) -> Sql:
    """Range comparison of the target [low, high] with the search value (search.html#prefix)."""
    assert value.low is not None and value.high is not None
    vlow, vhigh = value.low, value.high
    prefix = value.prefix
    if prefix in ("eq", "ne"):
        inside: Sql = (f"({low} >= ? AND {high} <= ?)", [vlow, vhigh])
        return inside if prefix == "eq" else _not(inside)
    single = {"gt": (high, ">", vhigh), "lt": (low, "<", vlow), "ge": (high, ">=", vlow),
              "le": (low, "<=", vhigh), "sa": (low, ">", vhigh), "eb": (high, "<", vlow)}
    if prefix in single:
        column, operator, bound = single[prefix]
        return f"{column} {operator} ?", [bound]
    margin = max((vhigh - vlow) * 0.1, 86400.0)  # ap: within 10% (at least a day)
    return (f"({high} >= ? AND {low} <= ? AND {low} > ?)",
            [vlow - margin, vhigh + margin, -INFINITY])


def _number_match(kind: str, value: Value, i: str) -> Sql:
    assert value.low is not None and value.high is not None
    column = f"{i}.value"
    exact = (value.low + value.high) / 2
    comparisons: dict[str, Sql] = {
        "eq": (f"({column} >= ? AND {column} < ?)", [value.low, value.high]),
        "ne": (f"({column} < ? OR {column} >= ?)", [value.low, value.high]),
        "gt": (f"{column} > ?", [exact]), "lt": (f"{column} < ?", [exact]),
        "ge": (f"{column} >= ?", [exact]), "le": (f"{column} <= ?", [exact]),
        "sa": (f"{column} > ?", [exact]), "eb": (f"{column} < ?", [exact]),
        "ap": (f"({column} >= ? AND {column} <= ?)", [exact * 0.9, exact * 1.1]),
    }
    conditions = [comparisons[value.prefix]]
    if kind == "quantity" and value.system is not None:
        conditions.append((f"{i}.system = ?", [value.system]))
    if kind == "quantity" and value.code is not None:
        conditions.append((f"{i}.code = ?", [value.code]))
    return _and(conditions)


def _uri_match(modifier: str | None, value: Value, i: str) -> Sql:
    if modifier == "below":
        return _like(f"{i}.value", f"{_like_escape(value.raw)}%")
    if modifier == "above":
        return f"substr(?, 1, length({i}.value)) = {i}.value", [value.raw]
    return f"{i}.value = ?", [value.raw]


# -- sorting and paging --------------------------------------------------------------------

@dataclass(frozen=True)
class _Key:
    expression: Sql
    descending: bool


def _sort_keys(request: SearchRequest) -> list[_Key]:
    keys = []
    for number, key in enumerate(request.sort):
        param = key.param
        if param.code == "_id":
            expression: Sql = ("r.id", [])
        elif param.code == "_lastUpdated":
            expression = ("r.last_updated", [])
        else:
            expression = _sort_expression(request.resource_type, param.code, param.type,
                                          key.descending, f"s{number}")
        keys.append(_Key(expression, key.descending))
    return keys


def _sort_expression(resource_type: str, code: str, kind: str, descending: bool,
                     s: str) -> Sql:
    column = {"token": "code", "reference": "target_id"}.get(kind, "value")
    if kind == "date":
        column = "high" if descending else "low"
    aggregate = "MAX" if descending else "MIN"
    return (f"(SELECT {aggregate}({s}.{column}) FROM {INDEX_TABLES[kind].name} {s} "
            f"WHERE {s}.rid = r.rid AND {s}.type = ? AND {s}.param = ?)", [resource_type, code])


def encode_cursor(keys: list[Any], rid: int, direction: str) -> str:
    raw = orjson.dumps({"k": keys, "r": rid, "d": direction})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[list[Any], int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded))
        return list(data["k"]), int(data["r"]), str(data["d"])
    except (ValueError, KeyError, TypeError):
        raise InvalidRequest("Invalid paging cursor; start the search again.",
                             expression=["_cursor"]) from None


def _beyond(keys: list[_Key], values: list[Any], rid: int, reverse: bool) -> Sql:
    """Rows strictly after (or, reversed, before) the cursor position in sort order.
    NULL sort values come last in forward order."""
    condition: Sql = ("r.rid < ?" if reverse else "r.rid > ?", [rid])
    for key, value in reversed(list(zip(keys, values, strict=True))):
        descending = key.descending != reverse
        nulls_last = not reverse
        text, params = key.expression
        is_null: Sql = (f"{text} IS NULL", params)
        if value is None:
            after = (f"{text} IS NOT NULL", params) if not nulls_last else _FALSE
            equal = is_null
        else:
            compare: Sql = (f"{text} {'<' if descending else '>'} ?", [*params, value])
            after = _or([compare, is_null]) if nulls_last else compare
            equal = (f"{text} = ?", [*params, value])
        condition = _or([after, _and([equal, condition])])
    return condition


def _order_by(keys: list[_Key], reverse: bool) -> Sql:
    order: list[str] = []
    params: list[Any] = []
    for key in keys:
        descending = key.descending != reverse
        text, key_params = key.expression
        order.append(f"({text} IS NULL) {'DESC' if reverse else 'ASC'}")
        order.append(f"{text} {'DESC' if descending else 'ASC'}")
        params += key_params + key_params
    order.append("r.rid DESC" if reverse else "r.rid ASC")
    return ", ".join(order), params


@dataclass
class Page:
    """One page of matches (row ids in order) and cursors to its neighbours."""

    rids: list[int]
    next_cursor: str | None
    previous_cursor: str | None
    rows: dict[int, tuple[Any, ...]] = field(default_factory=dict)


def _base(request: SearchRequest, resource_type: str | None = None) -> Sql:
    resource_type = resource_type or request.resource_type
    conditions = [("r.type = ? AND r.deleted = ?", [resource_type, False]),
                  criteria_sql(request, resource_type=resource_type)]
    return _and(conditions + _visible("r"))


def _visible(alias: str, *, types: bool = False) -> list[Sql]:
    """The reading client's access (store/access.py) as a condition, when it has limits."""
    condition = visible_sql(alias, types=types)
    return [condition] if condition is not None else []


def run_page(conn: Queryable, request: SearchRequest, *, bodies: bool = False) -> Page:
    """One page of matches; with ``bodies``, each row also carries the current version's
    (type, id, version_id, last_updated, body) in ``Page.rows``, saving a second query."""
    keys = _sort_keys(request)
    values: list[Any] = []
    rid, direction = 0, "n"
    if request.cursor:
        values, rid, direction = decode_cursor(request.cursor)
        if len(values) != len(keys):
            raise InvalidRequest("The paging cursor does not belong to this search.",
                                 expression=["_cursor"])
    reverse = direction == "p"
    where = [_base(request)]
    if request.cursor:
        where.append(_beyond(keys, values, rid, reverse))
    condition = _and(where)
    order = _order_by(keys, reverse)
    columns = "".join(f", {k.expression[0]}" for k in keys)
    params = [v for k in keys for v in k.expression[1]] + condition[1] + order[1]
    source = "resource r"
    if bodies:
        columns += ", r.type, r.id, r.version_id, r.last_updated, v.body"
        source += " JOIN resource_version v ON v.rid = r.rid AND v.version_id = r.version_id"
    rows = execute(conn, f"SELECT r.rid{columns} FROM {source} WHERE {condition[0]} "
                         f"ORDER BY {order[0]} LIMIT ?", [*params, request.count + 1])
    width = 1 + len(keys)
    stored = {row[0]: row[width:] for row in rows} if bodies else {}
    rows = [row[:width] for row in rows]
    more = len(rows) > request.count
    rows = rows[:request.count]
    if reverse:
        rows.reverse()
    has_next = (more and not reverse) or (reverse and bool(request.cursor))
    has_previous = (reverse and more) or (not reverse and bool(request.cursor))
    return Page(
        rids=[r[0] for r in rows],
        next_cursor=encode_cursor(list(rows[-1][1:]), rows[-1][0], "n")
        if has_next and rows else None,
        previous_cursor=encode_cursor(list(rows[0][1:]), rows[0][0], "p")
        if has_previous and rows else None,
        rows=stored,
    )


def count(conn: Queryable, request: SearchRequest) -> int:
    condition = _base(request)
    rows = execute(conn, f"SELECT COUNT(*) FROM resource r WHERE {condition[0]}", condition[1])
    return int(rows[0][0])


def matches(conn: Connection, request: SearchRequest, rid: int,
            resource_type: str | None = None) -> bool:
    """Whether one stored resource (of ``resource_type``, by default the request's) is a
    current, undeleted match of the request: subscription criteria use the search's SQL."""
    condition = _base(request, resource_type)
    rows = execute(conn, f"SELECT r.rid FROM resource r WHERE r.rid = ? AND {condition[0]}",
                   [rid, *condition[1]])
    return bool(rows)


# -- includes ------------------------------------------------------------------------------

def included_rids(conn: Queryable, includes: list[Include], rids: list[int],
                  limit: int) -> list[int]:
    """Row ids of resources named by ``_include`` from the given resources."""
    if not rids or not includes:
        return []
    alternatives = _or([_include_condition(include) for include in includes])
    sources, excluded = _in_list("x.rid", rids), _in_list("t.rid", rids)
    visible = _and([("t.deleted = ?", [False]), *_visible("t", types=True)])
    sql = ("SELECT DISTINCT t.rid FROM idx_reference x JOIN resource t "
           "ON t.type = x.target_type AND t.id = x.target_id "
           f"WHERE {sources[0]} AND {alternatives[0]} AND {visible[0]} "
           f"AND NOT {excluded[0]} LIMIT ?")
    params = [*sources[1], *alternatives[1], *visible[1], *excluded[1], limit]
    return [r[0] for r in execute(conn, sql, params)]


def revincluded_rids(conn: Queryable, revincludes: list[Include], rids: list[int],
                     limit: int) -> list[int]:
    """Row ids of resources that refer to the given resources (``_revinclude``)."""
    if not rids or not revincludes:
        return []
    alternatives = _or([_include_condition(include) for include in revincludes])
    referred, excluded = _in_list("t.rid", rids), _in_list("x.rid", rids)
    visible = _visible("s", types=True)
    source = "JOIN resource s ON s.rid = x.rid " if visible else ""
    condition = _and([(f"{referred[0]} AND {alternatives[0]} AND NOT {excluded[0]}",
                       [*referred[1], *alternatives[1], *excluded[1]]), *visible])
    sql = ("SELECT DISTINCT x.rid FROM idx_reference x JOIN resource t "
           f"ON t.type = x.target_type AND t.id = x.target_id {source}"
           f"WHERE {condition[0]} LIMIT ?")
    params = [*condition[1], limit]
    return [r[0] for r in execute(conn, sql, params)]


def _include_condition(include: Include) -> Sql:
    conditions: list[Sql] = []
    if include.source != "*":
        conditions.append(("x.type = ?", [include.source]))
    if include.param is not None:
        conditions.append(("x.param = ?", [include.param]))
    if include.target is not None:
        conditions.append(("x.target_type = ?", [include.target]))
    return _and(conditions)


# -- execution -----------------------------------------------------------------------------

def execute(conn: Queryable, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Run SQL written with ``?`` placeholders on the DB-API cursor of ``conn``: a
    SQLAlchemy connection, or the reader's own SQLite connection (store/reader.py)."""
    if isinstance(conn, Connection):
        dbapi = conn.connection.dbapi_connection
        qmark = conn.dialect.paramstyle == "qmark"
    else:
        dbapi, qmark = conn, isinstance(conn, sqlite3.Connection)
    assert dbapi is not None
    if not qmark:
        sql = sql.replace("?", "%s")
    cursor = dbapi.cursor()
    try:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()
