"""deployments remember their commit's author and time, and who started them

The delivery metrics measure a change from its commit to production, and read an
environment's deployments by the time they went live or failed.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("author", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("actor", sa.String(length=128), nullable=True))
    op.create_index(
        "ix_deployments_environment_finished", "deployments", ["environment_id", "finished_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_deployments_environment_finished", table_name="deployments")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("actor")
        batch.drop_column("committed_at")
        batch.drop_column("author")
