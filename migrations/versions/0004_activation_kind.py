"""Activations say whether they were a rollback, so a second rollback walks further back.

Revision ID: 0004_activation_kind
Revises: 0003_pair_variants
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004_activation_kind"
down_revision: str | None = "0003_pair_variants"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("activations") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="activate")
        )


def downgrade() -> None:
    with op.batch_alter_table("activations") as batch:
        batch.drop_column("kind")
