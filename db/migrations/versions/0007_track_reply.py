"""tracks.reply_application_id, tracks.reply_token: the interaction of a track being made, so that a restart
can tell its user (issue 24, defect 8)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 23:30:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add the two nullable columns (rows made before stay without a reply to edit)."""
    with op.batch_alter_table("tracks") as batch:
        batch.add_column(sa.Column("reply_application_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("reply_token", sa.String(length=500), nullable=True))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("tracks") as batch:
        batch.drop_column("reply_token")
        batch.drop_column("reply_application_id")
