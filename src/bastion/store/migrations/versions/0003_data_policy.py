"""Projects get a residency and a data policy; sealed placeholder vaults for projects that keep them.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bastion.store.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("residency", sa.JSON, nullable=True))
        batch.add_column(sa.Column("data_policy", sa.JSON, nullable=False, server_default="{}"))
    op.create_table(
        "vaults",
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True, autoincrement=False),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("vaults")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("data_policy")
        batch.drop_column("residency")
