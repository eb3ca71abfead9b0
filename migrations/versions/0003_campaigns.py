"""campaigns: Label Studio projects per list, the task <-> item map, the annotations pull last saw

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("dimension_id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=True),
        sa.Column("server_url", sa.Text(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pulled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_campaigns_dataset_id_datasets"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["dimension_id"], ["dimensions.id"], name=op.f("fk_campaigns_dimension_id_dimensions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
    )
    op.create_table(
        "campaign_lists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("list_no", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("settings_hash", sa.String(length=64), nullable=True),
        sa.Column("synced_at", sa.String(length=64), nullable=True),
        sa.Column("fingerprint", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_lists_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_lists")),
        sa.UniqueConstraint("campaign_id", "list_no", name="uq_campaign_lists_campaign_list"),
    )
    op.create_table(
        "campaign_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("gold", sa.Float(), nullable=True),
        sa.Column("deleted", sa.Boolean(), server_default="0", nullable=False),
        sa.CheckConstraint("role IN ('item', 'control', 'nonword')", name=op.f("ck_campaign_tasks_role")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_tasks_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_campaign_tasks_item_id_items"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["list_id"], ["campaign_lists.id"], name=op.f("fk_campaign_tasks_list_id_campaign_lists"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_tasks")),
        sa.UniqueConstraint("campaign_id", "task_id", name="uq_campaign_tasks_campaign_task"),
    )
    with op.batch_alter_table("campaign_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_tasks_list_id"), ["list_id"], unique=False)

    op.create_table(
        "campaign_annotations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("task_row_id", sa.Integer(), nullable=False),
        sa.Column("annotation_id", sa.Integer(), nullable=False),
        sa.Column("annotator", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unknown", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("lead_time", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.String(length=64), nullable=True),
        sa.CheckConstraint("status IN ('ok', 'skipped', 'off_scale', 'duplicate')", name=op.f("ck_campaign_annotations_status")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_annotations_campaign_id_campaigns"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["task_row_id"], ["campaign_tasks.id"], name=op.f("fk_campaign_annotations_task_row_id_campaign_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_annotations")),
        sa.UniqueConstraint("campaign_id", "annotation_id", name="uq_campaign_annotations_campaign_annotation"),
    )
    with op.batch_alter_table("campaign_annotations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_annotations_task_row_id"), ["task_row_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("campaign_annotations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_annotations_task_row_id"))

    op.drop_table("campaign_annotations")
    with op.batch_alter_table("campaign_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_tasks_list_id"))

    op.drop_table("campaign_tasks")
    op.drop_table("campaign_lists")
    op.drop_table("campaigns")
