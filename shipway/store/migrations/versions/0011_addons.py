"""add-ons: databases and caches attached to apps

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "addons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("env_var", sa.String(length=255), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("fork", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_addons_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_addons_app_id_apps"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_addons_environment_id_environments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["addons.id"],
            name=op.f("fk_addons_parent_id_addons"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_addons")),
        sa.UniqueConstraint("organization_id", "name", name=op.f("uq_addons_organization_id")),
        sa.UniqueConstraint("resource", name=op.f("uq_addons_resource")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_addons_organization_id"), "addons", ["organization_id"])
    op.create_index(op.f("ix_addons_app_id"), "addons", ["app_id"])
    op.create_index(op.f("ix_addons_environment_id"), "addons", ["environment_id"])
    op.create_index(op.f("ix_addons_parent_id"), "addons", ["parent_id"])


def downgrade() -> None:
    op.drop_table("addons")
