"""partner_sync: the pull lease's owner and schedule, pull conflicts, pull failures (sync)

Revision ID: 0010_partner_sync
Revises: 0009_version_patient
Create Date: 2026-11-23 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_partner_sync'
down_revision = '0009_version_patient'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('partner', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pull_owner', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('pull_next_at', sa.Float(), server_default='0',
                                      nullable=False))
    with op.batch_alter_table('write_conflict', schema=None) as batch_op:
        batch_op.add_column(sa.Column('direction', sa.String(length=8), server_default='push',
                                      nullable=False))
        batch_op.alter_column('delivery_id', existing_type=sa.BigInteger(), nullable=True)
        batch_op.alter_column('http_status', existing_type=sa.Integer(), nullable=True)
    op.create_table('pull_failure',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('sid', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('remote_id', sa.String(length=64), nullable=True),
    sa.Column('remote_version', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pull_failure', schema=None) as batch_op:
        batch_op.create_index('ix_pull_failure_sid', ['sid', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('pull_failure', schema=None) as batch_op:
        batch_op.drop_index('ix_pull_failure_sid')
    op.drop_table('pull_failure')
    op.execute("DELETE FROM write_conflict WHERE direction = 'pull'")
    with op.batch_alter_table('write_conflict', schema=None) as batch_op:
        batch_op.alter_column('http_status', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('delivery_id', existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_column('direction')
    with op.batch_alter_table('partner', schema=None) as batch_op:
        batch_op.drop_column('pull_next_at')
        batch_op.drop_column('pull_owner')
