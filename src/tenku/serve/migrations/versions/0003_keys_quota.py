"""API keys and disk use: a ``keys`` table (each key's sha256, never the key itself; a name; an
admin flag; when it was revoked), each video's ``owner`` (the key that made it; NULL: made with
the server's --token or with no auth) and ``bytes`` (what its files take on disk, for the quota).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keys",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, unique=True, nullable=False),
        sa.Column("admin", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger),
    )
    op.add_column("videos", sa.Column("owner", sa.Text))
    op.add_column("videos", sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"))
    op.create_index("videos_owner", "videos", ["owner", "seq"])


def downgrade() -> None:
    op.drop_index("videos_owner", "videos")
    op.drop_column("videos", "bytes")
    op.drop_column("videos", "owner")
    op.drop_table("keys")
