"""score calibration: anchor sets (append-only), anchor images, each version's score map

Revision ID: 0002_score_calibration
Revises: 0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_score_calibration"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "anchor_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference_version_id", sa.Integer(), nullable=False),
        sa.Column("scored_by_version_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["reference_version_id"],
            ["model_versions.id"],
            name=op.f("fk_anchor_sets_reference_version_id_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["scored_by_version_id"],
            ["model_versions.id"],
            name=op.f("fk_anchor_sets_scored_by_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anchor_sets")),
    )
    op.create_table(
        "anchor_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("anchor_set_id", sa.Integer(), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["anchor_set_id"],
            ["anchor_sets.id"],
            name=op.f("fk_anchor_images_anchor_set_id_anchor_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anchor_images")),
        sa.UniqueConstraint("anchor_set_id", "idx", name="uq_anchor_images_set_idx"),
    )
    with op.batch_alter_table("anchor_images", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_anchor_images_anchor_set_id"), ["anchor_set_id"], unique=False
        )

    op.create_table(
        "version_calibrations",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("anchor_set_id", sa.Integer(), nullable=False),
        sa.Column("reference_version_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("score_map", sa.JSON(), nullable=False),
        sa.Column("anchors", sa.Integer(), nullable=False),
        sa.Column("residual", sa.Float(), nullable=False),
        sa.Column("rmse", sa.Float(), nullable=False),
        sa.Column("raw_drift", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["anchor_set_id"],
            ["anchor_sets.id"],
            name=op.f("fk_version_calibrations_anchor_set_id_anchor_sets"),
        ),
        sa.ForeignKeyConstraint(
            ["reference_version_id"],
            ["model_versions.id"],
            name=op.f("fk_version_calibrations_reference_version_id_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name=op.f("fk_version_calibrations_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("version_id", name=op.f("pk_version_calibrations")),
    )


def downgrade() -> None:
    op.drop_table("version_calibrations")
    with op.batch_alter_table("anchor_images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_anchor_images_anchor_set_id"))

    op.drop_table("anchor_images")
    op.drop_table("anchor_sets")
