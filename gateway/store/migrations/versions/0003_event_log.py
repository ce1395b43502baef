"""event log: per-subscription event logs, deliveries, attempts and the outbox cursor (sync)

Revision ID: 0003_event_log
Revises: 0002_inbound_messages
Create Date: 2026-11-23 11:01:50.820218
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003_event_log'
down_revision = '0002_inbound_messages'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sync_attempt',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('delivery_id', sa.BigInteger(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('latency_ms', sa.Float(), nullable=False),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('url', sa.String(length=1300), nullable=False),
    sa.PrimaryKeyConstraint('pk')
    )
    with op.batch_alter_table('sync_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_sync_attempt_delivery', ['delivery_id', 'attempt'], unique=False)

    op.create_table('sync_cursor',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('sync_delivery',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('sid', sa.BigInteger(), nullable=False),
    sa.Column('event_pk', sa.BigInteger(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('order_key', sa.String(length=200), nullable=False),
    sa.Column('notification_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('next_attempt_at', sa.Float(), nullable=False),
    sa.Column('claimed_until', sa.Float(), nullable=False),
    sa.Column('first_failure_at', sa.Float(), nullable=True),
    sa.Column('delivered_at', sa.Float(), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sync_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_sync_delivery_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_sync_delivery_event', ['event_pk'], unique=False)
        batch_op.create_index('ix_sync_delivery_queue', ['sid', 'order_key', 'status', 'id'], unique=False)

    op.create_table('sync_event',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('sid', sa.BigInteger(), nullable=False),
    sa.Column('event_number', sa.BigInteger(), nullable=False),
    sa.Column('outbox_seq', sa.BigInteger(), nullable=False),
    sa.Column('rid', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('patient', sa.String(length=140), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('pk'),
    sa.UniqueConstraint('sid', 'event_number', name='uq_sync_event_number')
    )
    with op.batch_alter_table('sync_event', schema=None) as batch_op:
        batch_op.create_index('ix_sync_event_created', ['created_at'], unique=False)

    op.create_table('sync_subscription',
    sa.Column('sid', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('rid', sa.BigInteger(), nullable=False),
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('resource_version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('resource_type', sa.String(length=64), nullable=False),
    sa.Column('criteria', sa.Text(), nullable=False),
    sa.Column('endpoint', sa.String(length=1024), nullable=False),
    sa.Column('payload', sa.String(length=64), nullable=True),
    sa.Column('headers', sa.Text(), nullable=False),
    sa.Column('last_event_number', sa.BigInteger(), nullable=False),
    sa.Column('blocked_until', sa.Float(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.Column('topic', sa.String(length=256), nullable=True),
    sa.Column('content', sa.String(length=16), nullable=True),
    sa.Column('heartbeat_seconds', sa.Integer(), nullable=True),
    sa.Column('timeout_seconds', sa.Integer(), nullable=True),
    sa.Column('last_sent_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('sid'),
    sa.UniqueConstraint('rid', name='uq_sync_subscription_rid')
    )


def downgrade() -> None:
    op.drop_table('sync_subscription')
    with op.batch_alter_table('sync_event', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_event_created')

    op.drop_table('sync_event')
    with op.batch_alter_table('sync_delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_delivery_queue')
        batch_op.drop_index('ix_sync_delivery_event')
        batch_op.drop_index('ix_sync_delivery_due')

    op.drop_table('sync_delivery')
    op.drop_table('sync_cursor')
    with op.batch_alter_table('sync_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_sync_attempt_delivery')

    op.drop_table('sync_attempt')
