"""Shared parameter types: row ids within what the databases can store (64-bit signed), so
an absurd number answers 422 (or 404) instead of overflowing the driver; and small
``application/x-www-form-urlencoded`` bodies (the token endpoint, the login form)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Path, Query, Request

MAX_ROW_ID = 2**63 - 1

RowId = Annotated[int, Path(ge=0, le=MAX_ROW_ID)]
AfterId = Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="only ids greater than this")]


async def small_form(request: Request, limit: int = 64 * 1024) -> dict[str, str] | None:
    """The fields of a URL-encoded form body (the last of each name), or None when the body
    is larger than ``limit`` bytes."""
    raw = await request.body()
    if len(raw) > limit:
        return None
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
