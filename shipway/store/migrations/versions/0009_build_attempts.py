"""builds remember which attempt runs them

A build whose builder was thought lost is given to another builder; the attempt that holds
the build is recorded so the earlier one, should its builder come back, stands down.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.add_column(sa.Column("attempt", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.drop_column("attempt")
