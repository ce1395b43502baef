"""Shared parameter types: row ids within what the databases can store (64-bit signed), so
an absurd number answers 422 (or 404) instead of overflowing the driver."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

MAX_ROW_ID = 2**63 - 1

RowId = Annotated[int, Path(ge=0, le=MAX_ROW_ID)]
AfterId = Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="only ids greater than this")]
