"""Compile a ``SearchRequest`` to SQL over the search index and run it.

Every criterion becomes ``resource.rid IN (SELECT rid FROM idx_<type> WHERE ...)``; values of
one parameter are ORed inside the subquery, criteria are ANDed. Pages use keyset cursors on
(sort keys..., rid), so each match is returned exactly once while data changes between pages.
Date comparisons follow search.html#prefix on ranges: a value is an interval [low, high].
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    and_,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement as Column

from gateway.errors import InvalidRequest
from gateway.fhir.dates import INFINITY
from gateway.search.request import Criterion, Include, SearchRequest
from gateway.search.values import Value
from gateway.store.indexer import normalize
from gateway.store.tables import INDEX_TABLES, resource_table

R = resource_table.c


# -- criteria ------------------------------------------------------------------------------

def criteria_condition(request: SearchRequest, rid: Column[Any] = R.rid,
                       resource_type: str | None = None) -> ColumnElement[bool]:
    """The WHERE clause (over ``resource``) for all criteria of a request."""
    target = resource_type or request.resource_type
    conditions = [criterion_condition(c, target, rid) for c in request.criteria]
    return and_(true(), *conditions)


def criterion_condition(criterion: Criterion, resource_type: str,
                        rid: Column[Any]) -> ColumnElement[bool]:
    param = criterion.param
    if param.code == "_id":
        return _id_condition(criterion)
    if param.code == "_lastUpdated":
        return or_(*[_date_match(v, R.last_updated, R.last_updated) for v in criterion.values])
    table = INDEX_TABLES[param.type]
    c = table.c
    scope = and_(c.type == resource_type, c.param == param.code)
    if criterion.missing is not None:
        present = rid.in_(select(c.rid).where(scope))
        return not_(present) if criterion.missing else present
    if criterion.chain:
        return rid.in_(select(c.rid).where(scope, _chain_condition(criterion, c)))
    if param.type == "token" and criterion.modifier == "not":
        matches = or_(*[_token_match(v, c) for v in criterion.values])
        return not_(rid.in_(select(c.rid).where(scope, matches)))
    matches = or_(*[_value_match(criterion, v, c) for v in criterion.values])
    return rid.in_(select(c.rid).where(scope, matches))


def _id_condition(criterion: Criterion) -> ColumnElement[bool]:
    ids = [v.raw for v in criterion.values]
    if criterion.modifier == "not":
        return R.id.not_in(ids)
    return R.id.in_(ids)


def _chain_condition(criterion: Criterion, c: Any) -> ColumnElement[bool]:
    target = resource_table.alias("chained")
    alternatives = []
    for target_type, inner in zip(criterion.target_types, criterion.chain, strict=True):
        found = select(target.c.id).where(
            target.c.type == target_type, target.c.deleted.is_(False),
            criterion_condition(inner, target_type, target.c.rid))
        alternatives.append(and_(c.target_type == target_type, c.target_id.in_(found)))
    return or_(*alternatives)


def _value_match(criterion: Criterion, value: Value, c: Any) -> ColumnElement[bool]:
    kind = criterion.param.type
    if kind == "token":
        return _token_match(value, c)
    if kind == "string":
        return _string_match(criterion.modifier, value, c)
    if kind == "reference":
        return _reference_match(criterion, value, c)
    if kind == "date":
        return _date_match(value, c.low, c.high)
    if kind in ("number", "quantity"):
        return _number_match(value, c)
    return _uri_match(criterion.modifier, value, c)


def _token_match(value: Value, c: Any) -> ColumnElement[bool]:
    conditions = []
    if value.code is not None:
        conditions.append(c.code == value.code)
    if value.has_system and value.system is None:
        conditions.append(or_(c.system == "", c.system.is_(None)))
    elif value.has_system:
        # Primitive codes are indexed with the system their binding implies (NULL when
        # none is known); a query naming a system matches only that system.
        conditions.append(c.system == value.system)
    if not conditions:
        raise InvalidRequest(f"Empty token value {value.raw!r}.")
    return and_(*conditions)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _string_match(modifier: str | None, value: Value, c: Any) -> ColumnElement[bool]:
    if modifier == "exact":
        return c.exact == value.raw
    needle = _like_escape(normalize(value.raw))
    if modifier == "contains":
        return c.value.like(f"%{needle}%", escape="\\")
    return c.value.like(f"{needle}%", escape="\\")


def _reference_match(criterion: Criterion, value: Value, c: Any) -> ColumnElement[bool]:
    if value.url is not None:
        return c.url == value.url
    conditions = [c.target_id == value.ref_id]
    wanted = value.ref_type or (criterion.target_types[0] if criterion.target_types else None)
    if value.ref_type and criterion.target_types and value.ref_type not in criterion.target_types:
        return false()
    if wanted:
        conditions.append(c.target_type == wanted)
    return and_(*conditions)


def _date_match(value: Value, low: Any, high: Any) -> ColumnElement[bool]:
    """Range comparison of the target [low, high] with the search value (search.html#prefix)."""
    assert value.low is not None and value.high is not None
    vlow, vhigh = value.low, value.high
    prefix = value.prefix
    if prefix == "eq":
        return and_(low >= vlow, high <= vhigh)
    if prefix == "ne":
        return not_(and_(low >= vlow, high <= vhigh))
    if prefix == "gt":
        return high > vhigh
    if prefix == "lt":
        return low < vlow
    if prefix == "ge":
        return high >= vlow
    if prefix == "le":
        return low <= vhigh
    if prefix == "sa":
        return low > vhigh
    if prefix == "eb":
        return high < vlow
    margin = max((vhigh - vlow) * 0.1, 86400.0)  # ap: within 10% (at least a day)
    return and_(high >= vlow - margin, low <= vhigh + margin, low > -INFINITY)


def _number_match(value: Value, c: Any) -> ColumnElement[bool]:
    assert value.low is not None and value.high is not None
    column = c.value
    prefix = value.prefix
    exact = (value.low + value.high) / 2
    comparisons = {
        "eq": and_(column >= value.low, column < value.high),
        "ne": or_(column < value.low, column >= value.high),
        "gt": column > exact, "lt": column < exact,
        "ge": column >= exact, "le": column <= exact,
        "sa": column > exact, "eb": column < exact,
        "ap": and_(column >= exact * 0.9, column <= exact * 1.1),
    }
    condition = comparisons[prefix]
    if "system" in c and value.system is not None:
        condition = and_(condition, c.system == value.system)
    if "code" in c and value.code is not None:
        condition = and_(condition, c.code == value.code)
    return condition


def _uri_match(modifier: str | None, value: Value, c: Any) -> ColumnElement[bool]:
    if modifier == "below":
        return c.value.like(f"{_like_escape(value.raw)}%", escape="\\")
    if modifier == "above":
        return func.substr(value.raw, 1, func.length(c.value)) == c.value
    return c.value == value.raw


# -- sorting and paging --------------------------------------------------------------------

@dataclass(frozen=True)
class _Key:
    expression: Any
    descending: bool


def _sort_keys(request: SearchRequest) -> list[_Key]:
    keys = []
    for key in request.sort:
        param = key.param
        if param.code == "_id":
            expression: Any = R.id
        elif param.code == "_lastUpdated":
            expression = R.last_updated
        else:
            expression = _sort_expression(request.resource_type, param.code, param.type,
                                          key.descending)
        keys.append(_Key(expression, key.descending))
    return keys


def _sort_expression(resource_type: str, code: str, kind: str, descending: bool) -> Any:
    table = INDEX_TABLES[kind]
    c = table.c
    column = {"token": c.get("code"), "string": c.get("value"), "date": None,
              "reference": c.get("target_id"), "uri": c.get("value")}.get(kind, c.get("value"))
    if kind == "date":
        column = c.high if descending else c.low
    aggregate = func.max(column) if descending else func.min(column)
    return (select(aggregate).where(c.rid == R.rid, c.type == resource_type, c.param == code)
            .scalar_subquery())


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


def _beyond(keys: list[_Key], values: list[Any], rid: int, reverse: bool) -> ColumnElement[bool]:
    """Rows strictly after (or, reversed, before) the cursor position in sort order.
    NULL sort values come last in forward order."""
    condition: ColumnElement[bool] = R.rid < rid if reverse else R.rid > rid
    for key, value in reversed(list(zip(keys, values, strict=True))):
        descending = key.descending != reverse
        nulls_last = not reverse
        expression = key.expression
        if value is None:
            after = expression.is_not(None) if not nulls_last else false()
            equal = expression.is_(None)
        else:
            compare = expression < value if descending else expression > value
            after = or_(compare, expression.is_(None)) if nulls_last else compare
            equal = expression == value
        condition = or_(after, and_(equal, condition))
    return condition


def _order_by(keys: list[_Key], reverse: bool) -> list[Any]:
    order: list[Any] = []
    for key in keys:
        descending = key.descending != reverse
        is_null = key.expression.is_(None)
        order.append(is_null.desc() if reverse else is_null.asc())
        order.append(key.expression.desc() if descending else key.expression.asc())
    order.append(R.rid.desc() if reverse else R.rid.asc())
    return order


@dataclass
class Page:
    """One page of matches (row ids in order) and cursors to its neighbours."""

    rids: list[int]
    next_cursor: str | None
    previous_cursor: str | None


def run_page(conn: Connection, request: SearchRequest) -> Page:
    keys = _sort_keys(request)
    base = and_(R.type == request.resource_type, R.deleted.is_(False),
                criteria_condition(request))
    values: list[Any] = []
    rid, direction = 0, "n"
    if request.cursor:
        values, rid, direction = decode_cursor(request.cursor)
        if len(values) != len(keys):
            raise InvalidRequest("The paging cursor does not belong to this search.",
                                 expression=["_cursor"])
    reverse = direction == "p"
    statement = select(R.rid, *[k.expression for k in keys]).where(base)
    if request.cursor:
        statement = statement.where(_beyond(keys, values, rid, reverse))
    statement = statement.order_by(*_order_by(keys, reverse)).limit(request.count + 1)
    rows = list(conn.execute(statement))
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
    )


def count(conn: Connection, request: SearchRequest) -> int:
    statement = select(func.count()).select_from(resource_table).where(
        R.type == request.resource_type, R.deleted.is_(False), criteria_condition(request))
    return int(conn.execute(statement).scalar_one())


def matches(conn: Connection, request: SearchRequest, rid: int) -> bool:
    """Whether one stored resource matches the request (subscription criteria)."""
    statement = select(R.rid).where(R.rid == rid, R.type == request.resource_type,
                                    R.deleted.is_(False), criteria_condition(request))
    return conn.execute(statement).first() is not None


# -- includes ------------------------------------------------------------------------------

def included_rids(conn: Connection, includes: list[Include], rids: list[int],
                  limit: int) -> list[int]:
    """Row ids of resources named by ``_include`` from the given resources."""
    if not rids or not includes:
        return []
    ref = INDEX_TABLES["reference"].c
    target = resource_table.alias("target")
    alternatives = [_include_condition(ref, include, target_side=False)
                    for include in includes]
    statement = (
        select(target.c.rid).distinct()
        .join_from(INDEX_TABLES["reference"], target,
                   and_(target.c.type == ref.target_type, target.c.id == ref.target_id))
        .where(ref.rid.in_(rids), or_(*alternatives), target.c.deleted.is_(False),
               target.c.rid.not_in(rids))
        .limit(limit)
    )
    return [r[0] for r in conn.execute(statement)]


def revincluded_rids(conn: Connection, revincludes: list[Include], rids: list[int],
                     limit: int) -> list[int]:
    """Row ids of resources that refer to the given resources (``_revinclude``)."""
    if not rids or not revincludes:
        return []
    ref = INDEX_TABLES["reference"].c
    referred = resource_table.alias("referred")
    alternatives = [_include_condition(ref, include, target_side=True)
                    for include in revincludes]
    statement = (
        select(ref.rid).distinct()
        .join_from(INDEX_TABLES["reference"], referred,
                   and_(referred.c.type == ref.target_type, referred.c.id == ref.target_id))
        .where(referred.c.rid.in_(rids), or_(*alternatives), ref.rid.not_in(rids))
        .limit(limit)
    )
    return [r[0] for r in conn.execute(statement)]


def _include_condition(ref: Any, include: Include, *, target_side: bool) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = true()
    if include.source != "*":
        condition = and_(condition, ref.type == include.source)
    if include.param is not None:
        condition = and_(condition, ref.param == include.param)
    if include.target is not None:
        condition = and_(condition, ref.target_type == include.target)
    return condition
