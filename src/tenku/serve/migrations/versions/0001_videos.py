"""The videos table as the SQLite store first made it (if_not_exists: a data dir made before
migrations already has it, and is then only marked as at this revision).

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "videos",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.Text, unique=True, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("progress", sa.Integer, nullable=False, server_default="0"),
        sa.Column("info", sa.Text, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("error_code", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("completed_at", sa.BigInteger),
        sa.Column("expires_at", sa.BigInteger),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("expired", sa.Integer, nullable=False, server_default="0"),
        sa.Column("result", sa.Text),
        sqlite_autoincrement=True,
        if_not_exists=True,
    )
    op.create_index("videos_status", "videos", ["status", "seq"], if_not_exists=True)


def downgrade() -> None:
    op.drop_table("videos")
