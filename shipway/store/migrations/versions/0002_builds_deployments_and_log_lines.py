"""builds, deployments and log lines

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_lines")),
        sa.UniqueConstraint("kind", "owner_id", "seq", name=op.f("uq_log_lines_kind")),
    )
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("build_network", sa.Boolean(), server_default=sa.true(), nullable=False)
        )

    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stack", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column(
                "steps",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )

    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ref", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("commit_sha", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), nullable=False, server_default="git")
        )


def downgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("source")
        batch_op.drop_column("commit_sha")
        batch_op.drop_column("ref")

    with op.batch_alter_table("builds", schema=None) as batch_op:
        batch_op.drop_column("steps")
        batch_op.drop_column("stack")

    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_column("build_network")

    op.drop_table("log_lines")
