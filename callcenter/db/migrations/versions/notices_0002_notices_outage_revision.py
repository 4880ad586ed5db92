"""notices: an outage's revision, counted up by each change (times, areas or text)

Revision ID: notices_0002
Revises: notices_0001
Create Date: 2026-12-01 12:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'notices_0002'
down_revision: str | Sequence[str] | None = 'notices_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outages') as batch:
        batch.add_column(sa.Column('revision', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('outages') as batch:
        batch.drop_column('revision')
