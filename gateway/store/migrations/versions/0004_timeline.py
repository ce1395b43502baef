"""timeline: find a patient's notification events by patient

Revision ID: 0004_timeline
Revises: 0003_event_log
Create Date: 2026-11-23 13:45:00.000000
"""

from __future__ import annotations

from alembic import op

revision = '0004_timeline'
down_revision = '0003_event_log'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sync_event', schema=None) as batch_op:
        batch_op.create_index('ix_sync_event_patient', ['patient', 'pk'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sync_event', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_event_patient')
