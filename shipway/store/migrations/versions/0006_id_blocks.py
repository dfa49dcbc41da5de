"""id blocks: ids a process hands out without a write per id

A process reserves a block of ids at a time (one write), then hands them out from memory;
function runs take their ids this way, so a call's record can be written after the call.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    blocks = op.create_table(
        "id_blocks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("next_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_id_blocks")),
    )
    first = op.get_bind().scalar(sa.text("SELECT COALESCE(MAX(id), 0) + 1 FROM function_runs"))
    op.bulk_insert(blocks, [{"name": "function_runs", "next_id": first}])


def downgrade() -> None:
    op.drop_table("id_blocks")
