"""word lists: items a dataset lists without rating them, and the attributes its columns give them

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_items",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_items_dataset_id_datasets"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_dataset_items_item_id_items"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dataset_id", "item_id", name=op.f("pk_dataset_items")),
    )
    with op.batch_alter_table("dataset_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dataset_items_item_id"), ["item_id"], unique=False)
    op.create_table(
        "item_attributes",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name=op.f("fk_item_attributes_dataset_id_datasets"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_item_attributes_item_id_items"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dataset_id", "item_id", "key", name=op.f("pk_item_attributes")),
    )
    with op.batch_alter_table("item_attributes", schema=None) as batch_op:
        batch_op.create_index("ix_item_attributes_key_item", ["key", "item_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("item_attributes", schema=None) as batch_op:
        batch_op.drop_index("ix_item_attributes_key_item")
    op.drop_table("item_attributes")
    with op.batch_alter_table("dataset_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_items_item_id"))
    op.drop_table("dataset_items")
