"""workflow cursor: the coordination workflow runner's position in the outbox

The runner (gateway/coordination/runner.py) reads the outbox with its own ``sync_cursor`` row.
An existing database starts it at the newest outbox row, so changes made before the upgrade
(already routed, possibly long ago) do not raise follow-up Tasks after the fact; a new
database starts it at 0.

Revision ID: 0005_workflow_cursor
Revises: 0004_timeline
Create Date: 2026-11-23 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005_workflow_cursor'
down_revision = '0004_timeline'
branch_labels = None
depends_on = None

_CURSOR = sa.table('sync_cursor', sa.column('name', sa.String), sa.column('position', sa.BigInteger))
_OUTBOX = sa.table('outbox', sa.column('seq', sa.BigInteger))


def upgrade() -> None:
    bind = op.get_bind()
    newest = bind.execute(sa.select(sa.func.max(_OUTBOX.c.seq))).scalar() or 0
    exists = bind.execute(sa.select(_CURSOR.c.name).where(_CURSOR.c.name == 'workflows')).first()
    if exists is None:
        op.execute(_CURSOR.insert().values(name='workflows', position=newest))


def downgrade() -> None:
    op.execute(_CURSOR.delete().where(_CURSOR.c.name == 'workflows'))
