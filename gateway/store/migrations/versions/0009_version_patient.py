"""version patient: the patient each stored version belonged to

Access by organization (store/access.py) judges a version by its own patient, so a resource
moved from one patient to another does not show its earlier versions to the new patient's
organizations through vread or history. Existing versions take the patient their resource
belongs to now, the best that is known of them.

Revision ID: 0009_version_patient
Revises: 0008_partners
Create Date: 2026-11-23 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009_version_patient'
down_revision = '0008_partners'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('resource_version', schema=None) as batch_op:
        batch_op.add_column(sa.Column('patient', sa.String(length=140), nullable=True))
    op.execute("UPDATE resource_version SET patient = (SELECT r.patient FROM resource r "
               "WHERE r.rid = resource_version.rid)")


def downgrade() -> None:
    with op.batch_alter_table('resource_version', schema=None) as batch_op:
        batch_op.drop_column('patient')
