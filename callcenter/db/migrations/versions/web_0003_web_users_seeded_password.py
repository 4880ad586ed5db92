"""web: the hash of the password the settings last gave a user, so a changed one in the
settings ends the user's sessions and a password the user chose since is kept otherwise

Revision ID: web_0003
Revises: web_0002
Create Date: 2026-12-01 08:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'web_0003'
down_revision: str | Sequence[str] | None = 'web_0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('web_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seeded_password_hash', sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('web_users', schema=None) as batch_op:
        batch_op.drop_column('seeded_password_hash')
