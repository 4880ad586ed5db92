"""qa: assignments, reviews, the queues each reviewer covers

(Depends on the recording branch: QA reviews transcribed calls.)

Revision ID: qa_0001
Revises:
Create Date: 2026-11-27 02:41:38.529271
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = 'qa_0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('qa',)
depends_on: str | Sequence[str] | None = 'recording_0002'


def upgrade() -> None:
    op.create_table('qa_reviewer_queues',
    sa.Column('reviewer', sa.String(length=64), nullable=False),
    sa.Column('queue', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('reviewer', 'queue', name=op.f('pk_qa_reviewer_queues'))
    )
    op.create_table('qa_assignments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('call_id', sa.String(length=36), nullable=False),
    sa.Column('reviewer', sa.String(length=64), nullable=False),
    sa.Column('week', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.String(length=8), nullable=False),
    sa.Column('agent_id', sa.String(length=64), nullable=True),
    sa.Column('assigned_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_qa_assignments_call_id_calls'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qa_assignments')),
    sa.UniqueConstraint('call_id', name=op.f('uq_qa_assignments_call_id'))
    )
    with op.batch_alter_table('qa_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qa_assignments_reviewer'), ['reviewer'], unique=False)
        batch_op.create_index(batch_op.f('ix_qa_assignments_week'), ['week'], unique=False)

    op.create_table('qa_reviews',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('call_id', sa.String(length=36), nullable=False),
    sa.Column('reviewer', sa.String(length=64), nullable=False),
    sa.Column('scorecard', sa.String(length=64), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('total', sa.Float(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_qa_reviews_call_id_calls'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qa_reviews')),
    sa.UniqueConstraint('call_id', 'reviewer', name=op.f('uq_qa_reviews_call_id'))
    )
    with op.batch_alter_table('qa_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qa_reviews_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_qa_reviews_reviewer'), ['reviewer'], unique=False)
        batch_op.create_index(batch_op.f('ix_qa_reviews_total'), ['total'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('qa_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qa_reviews_total'))
        batch_op.drop_index(batch_op.f('ix_qa_reviews_reviewer'))
        batch_op.drop_index(batch_op.f('ix_qa_reviews_call_id'))

    op.drop_table('qa_reviews')
    with op.batch_alter_table('qa_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qa_assignments_week'))
        batch_op.drop_index(batch_op.f('ix_qa_assignments_reviewer'))

    op.drop_table('qa_assignments')
    op.drop_table('qa_reviewer_queues')
