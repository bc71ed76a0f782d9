"""votes remember which vote reactions the user still has

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 11:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add votes.reacted_up / reacted_down, filled from the vote each existing row holds."""
    with op.batch_alter_table("votes") as batch_op:
        batch_op.add_column(sa.Column("reacted_up", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("reacted_down", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute("UPDATE votes SET reacted_up = (value > 0), reacted_down = (value < 0)")


def downgrade() -> None:
    """Drop the reaction columns."""
    with op.batch_alter_table("votes") as batch_op:
        batch_op.drop_column("reacted_down")
        batch_op.drop_column("reacted_up")
