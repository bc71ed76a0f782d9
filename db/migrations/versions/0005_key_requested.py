"""tracks remember the key a user asked for (/lofi key:), so Variation and Extend keep it

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 10:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add tracks.key_requested (NULL for every existing track: their key was drawn from the seed)."""
    with op.batch_alter_table("tracks") as batch_op:
        batch_op.add_column(sa.Column("key_requested", sa.String(length=20), nullable=True))


def downgrade() -> None:
    """Drop tracks.key_requested."""
    with op.batch_alter_table("tracks") as batch_op:
        batch_op.drop_column("key_requested")
