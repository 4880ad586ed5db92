"""recording: the audit trail of purged and erased recordings

Revision ID: recording_0002
Revises: recording_0001
Create Date: 2026-11-23 10:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = 'recording_0002'
down_revision: str | Sequence[str] | None = 'recording_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('recording_audit',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=8), nullable=False),
    sa.Column('call_id', sa.String(length=36), nullable=True),
    sa.Column('caller_number', sa.String(length=32), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recording_audit'))
    )
    with op.batch_alter_table('recording_audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recording_audit_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_recording_audit_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recording_audit_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recording_audit_caller_number'), ['caller_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recording_audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recording_audit_caller_number'))
        batch_op.drop_index(batch_op.f('ix_recording_audit_call_id'))
        batch_op.drop_index(batch_op.f('ix_recording_audit_at'))
        batch_op.drop_index(batch_op.f('ix_recording_audit_action'))

    op.drop_table('recording_audit')
