"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 09:27:19.480460
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('idx_date',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('rid', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('low', sa.Float(), nullable=False),
    sa.Column('high', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('pk')
    )
    with op.batch_alter_table('idx_date', schema=None) as batch_op:
        batch_op.create_index('ix_date_high', ['type', 'param', 'high'], unique=False)
        batch_op.create_index('ix_date_low', ['type', 'param', 'low'], unique=False)
        batch_op.create_index('ix_date_rid', ['rid'], unique=False)

    op.create_table('idx_number',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('rid', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('pk')
    )
    with op.batch_alter_table('idx_number', schema=None) as batch_op:
        batch_op.create_index('ix_number_lookup', ['type', 'param', 'value'], unique=False)
        batch_op.create_index('ix_number_rid', ['rid'], unique=False)

    op.create_table('idx_quantity',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('rid', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('system', sa.String(length=512), nullable=True),
    sa.Column('code', sa.String(length=512), nullable=True),
    sa.PrimaryKeyConstraint('pk')
    )
    with op.batch_alter_table('idx_quantity', schema=None) as batch_op:
        batch_op.create_index('ix_quantity_lookup', ['type', 'param', 'value'], unique=False)
        batch_op.create_index('ix_quantity_rid', ['rid'], unique=False)

    op.create_table('idx_reference',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('rid', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=64), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('url', sa.String(length=1024), nullable=True),
    sa.PrimaryKeyConstraint('pk')
    )
    with op.batch_alter_table('idx_reference', schema=None) as batch_op:
        batch_op.create_index('ix_reference_lookup', ['type', 'param', 'target_id', 'target_type'], unique=False)
        batch_op.create_index('ix_reference_rid', ['rid'], unique=False)
        batch_op.create_index('ix_reference_target', ['target_type', 'target_id'], unique=False)

    op.create_table('idx_string',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('rid', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=512), nullable=False),
    sa.Column('exact', sa.String(length=512), nullable=False),
    sa.PrimaryKeyConstraint('pk')
    )
    with op.batch_alter_table('idx_string', schema=None) as batch_op:
        batch_op.create_index('ix_string_lookup', ['type', 'param', 'value'], unique=False)
        batch_op.create_index('ix_string_rid', ['rid'], unique=False)

    op.create_table('idx_token',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('rid', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('system', sa.String(length=512), nullable=True),
    sa.Column('code', sa.String(length=512), nullable=True),
    sa.PrimaryKeyConstraint('pk')
    )
    with op.batch_alter_table('idx_token', schema=None) as batch_op:
        batch_op.create_index('ix_token_lookup', ['type', 'param', 'code', 'system'], unique=False)
        batch_op.create_index('ix_token_rid', ['rid'], unique=False)

    op.create_table('idx_uri',
    sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('rid', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('param', sa.String(length=64), nullable=False),
    sa.Column('value', sa.String(length=1024), nullable=False),
    sa.PrimaryKeyConstraint('pk')
    )
    with op.batch_alter_table('idx_uri', schema=None) as batch_op:
        batch_op.create_index('ix_uri_lookup', ['type', 'param', 'value'], unique=False)
        batch_op.create_index('ix_uri_rid', ['rid'], unique=False)

    op.create_table('outbox',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('rid', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('patient', sa.String(length=140), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_patient', ['patient', 'seq'], unique=False)

    op.create_table('resource',
    sa.Column('rid', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('last_updated', sa.Float(), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('patient', sa.String(length=140), nullable=True),
    sa.PrimaryKeyConstraint('rid'),
    sa.UniqueConstraint('type', 'id', name='uq_resource_type_id')
    )
    with op.batch_alter_table('resource', schema=None) as batch_op:
        batch_op.create_index('ix_resource_type_updated', ['type', 'last_updated'], unique=False)

    op.create_table('resource_version',
    sa.Column('rid', sa.BigInteger(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('last_updated', sa.Float(), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('deleted', sa.Boolean(), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('rid', 'version_id')
    )
    with op.batch_alter_table('resource_version', schema=None) as batch_op:
        batch_op.create_index('ix_version_type_updated', ['type', 'last_updated'], unique=False)
        batch_op.create_index('ix_version_updated', ['last_updated'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('resource_version', schema=None) as batch_op:
        batch_op.drop_index('ix_version_updated')
        batch_op.drop_index('ix_version_type_updated')

    op.drop_table('resource_version')
    with op.batch_alter_table('resource', schema=None) as batch_op:
        batch_op.drop_index('ix_resource_type_updated')

    op.drop_table('resource')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_patient')

    op.drop_table('outbox')
    with op.batch_alter_table('idx_uri', schema=None) as batch_op:
        batch_op.drop_index('ix_uri_rid')
        batch_op.drop_index('ix_uri_lookup')

    op.drop_table('idx_uri')
    with op.batch_alter_table('idx_token', schema=None) as batch_op:
        batch_op.drop_index('ix_token_rid')
        batch_op.drop_index('ix_token_lookup')

    op.drop_table('idx_token')
    with op.batch_alter_table('idx_string', schema=None) as batch_op:
        batch_op.drop_index('ix_string_rid')
        batch_op.drop_index('ix_string_lookup')

    op.drop_table('idx_string')
    with op.batch_alter_table('idx_reference', schema=None) as batch_op:
        batch_op.drop_index('ix_reference_target')
        batch_op.drop_index('ix_reference_rid')
        batch_op.drop_index('ix_reference_lookup')

    op.drop_table('idx_reference')
    with op.batch_alter_table('idx_quantity', schema=None) as batch_op:
        batch_op.drop_index('ix_quantity_rid')
        batch_op.drop_index('ix_quantity_lookup')

    op.drop_table('idx_quantity')
    with op.batch_alter_table('idx_number', schema=None) as batch_op:
        batch_op.drop_index('ix_number_rid')
        batch_op.drop_index('ix_number_lookup')

    op.drop_table('idx_number')
    with op.batch_alter_table('idx_date', schema=None) as batch_op:
        batch_op.drop_index('ix_date_rid')
        batch_op.drop_index('ix_date_low')
        batch_op.drop_index('ix_date_high')

    op.drop_table('idx_date')

