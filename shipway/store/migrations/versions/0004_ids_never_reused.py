"""ids are never reused on SQLite

Without AUTOINCREMENT, SQLite hands the id of a deleted last row to the next one: a new
build could continue a deleted build's log, a new app inherit a deleted app's log and cache,
a new token the audit trail of a revoked one. PostgreSQL sequences never reuse ids.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: Parents before children; audit entries and log lines are never deleted one by one.
TABLES = (
    "organizations",
    "users",
    "api_tokens",
    "apps",
    "environments",
    "builds",
    "releases",
    "config_vars",
    "deployments",
)


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
