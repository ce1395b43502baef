"""clients: the registry of client applications and used client-assertion ids (auth)

Revision ID: 0006_clients
Revises: 0005_workflow_cursor
Create Date: 2026-11-23 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006_clients'
down_revision = '0005_workflow_cursor'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('auth_client',
    sa.Column('client_id', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('jwks', sa.Text(), nullable=True),
    sa.Column('jwks_url', sa.String(length=1024), nullable=True),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('organizations', sa.Text(), nullable=False),
    sa.Column('admin', sa.Boolean(), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('client_id')
    )
    op.create_table('auth_jti',
    sa.Column('client_id', sa.String(length=128), nullable=False),
    sa.Column('jti', sa.String(length=256), nullable=False),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('client_id', 'jti')
    )
    with op.batch_alter_table('auth_jti', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_auth_jti_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('auth_jti', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_auth_jti_expires_at'))
    op.drop_table('auth_jti')
    op.drop_table('auth_client')
