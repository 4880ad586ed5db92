"""workorders: photos a field unit took as evidence

Revision ID: workorders_0004
Revises: workorders_0003
Create Date: 2026-12-01 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = 'workorders_0004'
down_revision: str | Sequence[str] | None = 'workorders_0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('work_order_photos',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=16), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['order_id'], ['work_orders.id'], name=op.f('fk_work_order_photos_order_id_work_orders'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_work_order_photos')),
    sa.UniqueConstraint('path', name=op.f('uq_work_order_photos_path'))
    )
    with op.batch_alter_table('work_order_photos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_work_order_photos_order_id'), ['order_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('work_order_photos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_work_order_photos_order_id'))
    op.drop_table('work_order_photos')
