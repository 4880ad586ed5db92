"""web: a user's own phone (the endpoint a supervisor's listen/whisper/barge rings), and
whether the user came from the settings file (removed there: deactivated on start)

Revision ID: web_0002
Revises: web_0001
Create Date: 2026-12-01 08:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'web_0002'
down_revision: str | Sequence[str] | None = 'web_0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('web_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('from_settings', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('web_users', schema=None) as batch_op:
        batch_op.drop_column('from_settings')
        batch_op.drop_column('phone')
