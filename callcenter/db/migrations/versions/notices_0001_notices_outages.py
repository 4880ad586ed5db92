"""notices: outages

Revision ID: notices_0001
Revises:
Create Date: 2026-11-27 03:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = 'notices_0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('notices',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outages',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('areas', sa.JSON(), nullable=False),
    sa.Column('starts_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('cause', sa.Text(), nullable=False),
    sa.Column('created_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('announced_late', sa.Boolean(), nullable=False),
    sa.Column('cancelled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outages'))
    )
    with op.batch_alter_table('outages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outages_starts_at'), ['starts_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outages_ends_at'), ['ends_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outages_ends_at'))
        batch_op.drop_index(batch_op.f('ix_outages_starts_at'))
    op.drop_table('outages')
