"""apps connected to a git host repository, and the webhook deliveries they received

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

NEVER_REUSE = {"sqlite_autoincrement": True}


def _app_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["app_id"], ["apps.id"], name=op.f(f"fk_{table}_app_id_apps"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "repo_connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("repo", sa.String(length=255), nullable=False),
        sa.Column("api_url", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("token", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _app_fk("repo_connections"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repo_connections")),
        **NEVER_REUSE,
    )
    op.create_index(op.f("ix_repo_connections_app_id"), "repo_connections", ["app_id"], unique=True)
    op.create_index(
        op.f("ix_repo_connections_provider"), "repo_connections", ["provider"], unique=False
    )
    op.create_table(
        "hook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("delivery_id", sa.String(length=128), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("branch", sa.String(length=255), nullable=True),
        sa.Column("sha", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("deployment_id", sa.Integer(), nullable=True),
        sa.Column("reported", sa.String(length=255), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        _app_fk("hook_deliveries"),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_hook_deliveries_deployment_id_deployments"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hook_deliveries")),
        sa.UniqueConstraint("app_id", "delivery_id", name=op.f("uq_hook_deliveries_app_id")),
        **NEVER_REUSE,
    )
    op.create_index(op.f("ix_hook_deliveries_app_id"), "hook_deliveries", ["app_id"], unique=False)


def downgrade() -> None:
    op.drop_table("hook_deliveries")
    op.drop_table("repo_connections")
