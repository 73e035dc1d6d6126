"""Leases: the worker that holds a running job and until when (database clock, epoch seconds),
so workers in other processes and on other machines can take over a dead one's job.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("videos", sa.Column("worker", sa.Text))
    op.add_column("videos", sa.Column("lease_until", sa.Float))


def downgrade() -> None:
    op.drop_column("videos", "lease_until")
    op.drop_column("videos", "worker")
