"""Pairs may name a derived variant of each image (augmented rounds, the paper's round 2).

Revision ID: 0003_pair_variants
Revises: 0002_score_calibration
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003_pair_variants"
down_revision: str | None = "0002_score_calibration"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pairs") as batch:
        batch.add_column(sa.Column("variant_a", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("variant_b", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pairs") as batch:
        batch.drop_column("variant_b")
        batch.drop_column("variant_a")
