"""workorders: calls attached to an open order, and the outage's order

Revision ID: workorders_0006
Revises: workorders_0005
Create Date: 2026-12-01 15:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from callcenter.db.base import UTCDateTime

revision: str = 'workorders_0006'
down_revision: str | Sequence[str] | None = 'workorders_0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('work_orders') as batch:
        batch.add_column(sa.Column('outage_id', sa.Integer(), nullable=True))
        batch.create_index('ix_work_orders_outage_id', ['outage_id'])
    op.create_table(
        'work_order_calls',
        sa.Column('call_id', sa.String(length=36), sa.ForeignKey('calls.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('order_id', sa.Integer(), sa.ForeignKey('work_orders.id', ondelete='CASCADE'), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
    )
    op.create_index('ix_work_order_calls_order_id', 'work_order_calls', ['order_id'])


def downgrade() -> None:
    op.drop_index('ix_work_order_calls_order_id', table_name='work_order_calls')
    op.drop_table('work_order_calls')
    with op.batch_alter_table('work_orders') as batch:
        batch.drop_index('ix_work_orders_outage_id')
        batch.drop_column('outage_id')
