"""functions, their versions, triggers and runs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
NEVER_REUSE = {"sqlite_autoincrement": True}


def _function_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["function_id"],
        ["functions.id"],
        name=op.f(f"fk_{table}_function_id_functions"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "functions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("runtime", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("timeout", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("environment", JSON, nullable=False),
        sa.Column("webhook_url", sa.String(length=2048), nullable=True),
        sa.Column("manifest", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_functions_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_functions")),
        sa.UniqueConstraint("organization_id", "name", name=op.f("uq_functions_organization_id")),
        **NEVER_REUSE,
    )
    op.create_index(
        op.f("ix_functions_organization_id"), "functions", ["organization_id"], unique=False
    )
    op.create_table(
        "function_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("function_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=71), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _function_fk("function_versions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_function_versions")),
        sa.UniqueConstraint(
            "function_id", "version", name=op.f("uq_function_versions_function_id")
        ),
        **NEVER_REUSE,
    )
    op.create_index(op.f("ix_function_versions_function_id"), "function_versions", ["function_id"])
    op.create_table(
        "function_triggers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("function_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.String(length=255), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _function_fk("function_triggers"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_function_triggers")),
        sa.UniqueConstraint("function_id", "name", name=op.f("uq_function_triggers_function_id")),
        **NEVER_REUSE,
    )
    op.create_index(op.f("ix_function_triggers_function_id"), "function_triggers", ["function_id"])
    op.create_table(
        "function_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("function_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=128), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("params", JSON, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", JSON, nullable=True),
        sa.Column("error", JSON, nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        _function_fk("function_runs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_function_runs")),
        **NEVER_REUSE,
    )
    op.create_index(
        "ix_function_runs_function_created", "function_runs", ["function_id", "created_at"]
    )
    op.create_index(op.f("ix_function_runs_status"), "function_runs", ["status"])


def downgrade() -> None:
    for table in ("function_runs", "function_triggers", "function_versions", "functions"):
        op.drop_table(table)
