"""config vars, release config, formation and health settings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "config_vars",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("secret", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_config_vars_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_vars")),
        sa.UniqueConstraint("app_id", "key", name=op.f("uq_config_vars_app_id")),
    )
    op.create_index(op.f("ix_config_vars_app_id"), "config_vars", ["app_id"], unique=False)

    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("formation", JSON, nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(sa.Column("idle_timeout", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("health_path", sa.String(length=255), nullable=False, server_default="/")
        )
        batch_op.add_column(
            sa.Column("health_timeout", sa.Integer(), nullable=False, server_default="30")
        )

    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("config", JSON, nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(
            sa.Column("description", sa.String(length=255), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_column("description")
        batch_op.drop_column("config")

    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_column("health_timeout")
        batch_op.drop_column("health_path")
        batch_op.drop_column("idle_timeout")
        batch_op.drop_column("formation")

    op.drop_index(op.f("ix_config_vars_app_id"), table_name="config_vars")
    op.drop_table("config_vars")
