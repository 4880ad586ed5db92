"""admin: agents and queues kept in the database, the audit trail of changes, the settings version

Revision ID: admin_0001
Revises:
Create Date: 2026-12-01 15:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = 'admin_0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ('admin',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('hotline_agents',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('sip_ha1', sa.String(length=64), nullable=False),
    sa.Column('contact', sa.String(length=200), nullable=True),
    sa.Column('endpoints', sa.JSON(), nullable=False),
    sa.Column('queues', sa.JSON(), nullable=False),
    sa.Column('skills', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('updated_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hotline_agents'))
    )
    op.create_table('hotline_queues',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('policy', sa.JSON(), nullable=False),
    sa.Column('updated_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_hotline_queues'))
    )
    op.create_table('hotline_audit',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hotline_audit'))
    )
    with op.batch_alter_table('hotline_audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hotline_audit_at'), ['at'], unique=False)
    op.create_table('hotline_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('seeded_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hotline_settings'))
    )


def downgrade() -> None:
    op.drop_table('hotline_settings')
    with op.batch_alter_table('hotline_audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hotline_audit_at'))
    op.drop_table('hotline_audit')
    op.drop_table('hotline_queues')
    op.drop_table('hotline_agents')
