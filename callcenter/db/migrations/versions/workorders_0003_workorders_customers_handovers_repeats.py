"""workorders: customers, handovers, repeat complaints, deadline warnings

Revision ID: workorders_0003
Revises: workorders_0002
Create Date: 2026-11-27 02:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = 'workorders_0003'
down_revision: str | Sequence[str] | None = 'workorders_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('work_orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('repeat_of', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('warned', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('transferred', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f('ix_work_orders_repeat_of'), ['repeat_of'], unique=False)
    op.create_table('customers',
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('area', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('number', name=op.f('pk_customers'))
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customers_area'), ['area'], unique=False)
    op.create_table('handovers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('shift_start', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('shift_end', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('drafted_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('drafted_by', sa.String(length=64), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('accepted_by', sa.String(length=64), nullable=True),
    sa.Column('accepted_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handovers'))
    )
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_handovers_shift_start'), ['shift_start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('handovers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_handovers_shift_start'))
    op.drop_table('handovers')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customers_area'))
    op.drop_table('customers')
    with op.batch_alter_table('work_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_work_orders_repeat_of'))
        batch_op.drop_column('transferred')
        batch_op.drop_column('warned')
        batch_op.drop_column('repeat_of')
        batch_op.drop_column('account')
