"""inbound messages: every HL7 v2 / FHIR message received, stored raw before it is acknowledged

Revision ID: 0002_inbound_messages
Revises: 0001
Create Date: 2026-11-23 11:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002_inbound_messages'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbound_message',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('sender', sa.String(length=256), nullable=True),
    sa.Column('facility', sa.String(length=256), nullable=True),
    sa.Column('control_id', sa.String(length=200), nullable=True),
    sa.Column('message_type', sa.String(length=32), nullable=True),
    sa.Column('version', sa.String(length=16), nullable=True),
    sa.Column('visit', sa.String(length=512), nullable=True),
    sa.Column('event_time', sa.Float(), nullable=True),
    sa.Column('received_at', sa.Float(), nullable=False),
    sa.Column('processed_at', sa.Float(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('ack_code', sa.String(length=2), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('error_location', sa.String(length=64), nullable=True),
    sa.Column('resources', sa.Text(), nullable=True),
    sa.Column('ack', sa.Text(), nullable=True),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sender', 'control_id', name='uq_inbound_sender_control')
    )
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_status', ['status', 'id'], unique=False)
        batch_op.create_index('ix_inbound_visit', ['visit', 'event_time'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_visit')
        batch_op.drop_index('ix_inbound_status')

    op.drop_table('inbound_message')
