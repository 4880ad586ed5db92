"""workorders: key customers (大客户), told of outages at any hour and first

Revision ID: workorders_0005
Revises: workorders_0004
Create Date: 2026-12-01 12:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'workorders_0005'
down_revision: str | Sequence[str] | None = 'workorders_0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('customers') as batch:
        batch.add_column(sa.Column('key_customer', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('customers') as batch:
        batch.drop_column('key_customer')
