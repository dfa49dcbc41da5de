"""builds remember their pool

The pool the dispatch rules chose for a build, shown with it (and why it waits, when the
pool has no live builder).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.add_column(
            sa.Column("pool", sa.String(length=40), nullable=False, server_default="default")
        )


def downgrade() -> None:
    with op.batch_alter_table("builds") as batch:
        batch.drop_column("pool")
