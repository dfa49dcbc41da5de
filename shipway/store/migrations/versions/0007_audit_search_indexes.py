"""audit search indexes: newest first within each filter; JSONB containment on PostgreSQL

Searches filter a tenant's entries by action, subject or actor and read them newest first,
so each of those gets an index ending in created_at. On PostgreSQL, payload and tags get
GIN (jsonb_path_ops) indexes, which answer the containment (@>) tests of EQ, IN and
CONTAINS. SQLite indexes chosen payload paths at start instead (SHIPWAY_AUDIT_INDEXED_PATHS).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = ("action", "subject", "actor")


def upgrade() -> None:
    with op.batch_alter_table("audit_entries") as batch:
        batch.drop_index("ix_audit_entries_tenant_action")
        batch.drop_index("ix_audit_entries_tenant_subject")
        for column in COLUMNS:
            batch.create_index(
                f"ix_audit_entries_tenant_{column}_created",
                ["organization_id", column, "created_at"],
            )
    if op.get_bind().dialect.name == "postgresql":
        for column in ("payload", "tags"):
            op.create_index(
                f"ix_audit_entries_{column}",
                "audit_entries",
                [column],
                postgresql_using="gin",
                postgresql_ops={column: "jsonb_path_ops"},
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in ("payload", "tags"):
            op.drop_index(f"ix_audit_entries_{column}", table_name="audit_entries")
    with op.batch_alter_table("audit_entries") as batch:
        for column in COLUMNS:
            batch.drop_index(f"ix_audit_entries_tenant_{column}_created")
        batch.create_index("ix_audit_entries_tenant_action", ["organization_id", "action"])
        batch.create_index("ix_audit_entries_tenant_subject", ["organization_id", "subject"])
