"""calls: supervisions (listen / whisper / barge log), muted spans of recordings

Revision ID: calls_0002
Revises: calls_0001
Create Date: 2026-11-27 02:45:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = 'calls_0002'
down_revision: str | Sequence[str] | None = 'calls_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('muted_spans', sa.JSON(), nullable=True))
    op.create_table('supervisions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('supervisor', sa.String(length=64), nullable=False),
    sa.Column('agent_id', sa.String(length=64), nullable=False),
    sa.Column('call_id', sa.String(length=36), nullable=True),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('endpoint', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_supervisions'))
    )
    with op.batch_alter_table('supervisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_supervisions_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_supervisions_agent_id'), ['agent_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('supervisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_supervisions_agent_id'))
        batch_op.drop_index(batch_op.f('ix_supervisions_at'))
    op.drop_table('supervisions')
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_column('muted_spans')
