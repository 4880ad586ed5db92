"""sms: messages, replies, opt-outs

Revision ID: sms_0001
Revises:
Create Date: 2026-12-01 08:25:11.627152
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = 'sms_0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('sms',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sms_messages',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('idempotency_key', sa.String(length=160), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=True),
    sa.Column('coding', sa.String(length=8), nullable=False),
    sa.Column('parts', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claim', sa.String(length=36), nullable=True),
    sa.Column('dlr_token', sa.String(length=64), nullable=False),
    sa.Column('reply_code', sa.String(length=8), nullable=True),
    sa.Column('reply_until', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reply_text', sa.Text(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('failed_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('replied_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reports', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_messages')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_sms_messages_idempotency_key'))
    )
    with op.batch_alter_table('sms_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_messages_claim'), ['claim'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_messages_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_messages_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_messages_number'), ['number'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_messages_ref'), ['ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_messages_reply_until'), ['reply_until'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_messages_state'), ['state'], unique=False)

    op.create_table('sms_opt_outs',
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('number', name=op.f('pk_sms_opt_outs'))
    )
    op.create_table('sms_replies',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('to', sa.String(length=32), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('received_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('message_id', sa.String(length=36), nullable=True),
    sa.Column('taken_as', sa.String(length=16), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_replies'))
    )
    with op.batch_alter_table('sms_replies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_replies_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_replies_number'), ['number'], unique=False)
        batch_op.create_index(batch_op.f('ix_sms_replies_received_at'), ['received_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('sms_replies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_replies_received_at'))
        batch_op.drop_index(batch_op.f('ix_sms_replies_number'))
        batch_op.drop_index(batch_op.f('ix_sms_replies_message_id'))

    op.drop_table('sms_replies')
    op.drop_table('sms_opt_outs')
    with op.batch_alter_table('sms_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_messages_state'))
        batch_op.drop_index(batch_op.f('ix_sms_messages_reply_until'))
        batch_op.drop_index(batch_op.f('ix_sms_messages_ref'))
        batch_op.drop_index(batch_op.f('ix_sms_messages_number'))
        batch_op.drop_index(batch_op.f('ix_sms_messages_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_sms_messages_kind'))
        batch_op.drop_index(batch_op.f('ix_sms_messages_claim'))

    op.drop_table('sms_messages')
