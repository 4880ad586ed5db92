"""qa: the agent's sign-off of a review, disputes of an item, the moment a comment is about

Revision ID: qa_0002
Revises: qa_0001
Create Date: 2026-12-01 12:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = 'qa_0002'
down_revision: str | Sequence[str] | None = 'qa_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('qa_reviews', schema=None) as batch_op:
        batch_op.add_column(sa.Column('comment_at_s', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('signed_off_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('signed_off_by', sa.String(length=64), nullable=True))

    op.create_table('qa_disputes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=36), nullable=False),
    sa.Column('item', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('raised_by', sa.String(length=64), nullable=False),
    sa.Column('raised_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('handler', sa.String(length=64), nullable=True),
    sa.Column('handler_role', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('new_score', sa.Float(), nullable=True),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('resolved_by', sa.String(length=64), nullable=True),
    sa.Column('resolved_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_qa_disputes_call_id_calls'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['review_id'], ['qa_reviews.id'], name=op.f('fk_qa_disputes_review_id_qa_reviews'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qa_disputes'))
    )
    with op.batch_alter_table('qa_disputes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qa_disputes_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_qa_disputes_handler'), ['handler'], unique=False)
        batch_op.create_index(batch_op.f('ix_qa_disputes_review_id'), ['review_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_qa_disputes_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('qa_disputes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qa_disputes_state'))
        batch_op.drop_index(batch_op.f('ix_qa_disputes_review_id'))
        batch_op.drop_index(batch_op.f('ix_qa_disputes_handler'))
        batch_op.drop_index(batch_op.f('ix_qa_disputes_call_id'))
    op.drop_table('qa_disputes')
    with op.batch_alter_table('qa_reviews', schema=None) as batch_op:
        batch_op.drop_column('signed_off_by')
        batch_op.drop_column('signed_off_at')
        batch_op.drop_column('comment_at_s')
