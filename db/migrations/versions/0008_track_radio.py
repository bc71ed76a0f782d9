"""tracks.radio: a radio piece (no intro, outro or fades) is replayed as one for its stems, loop and extension

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 08:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

revision: str = "0008"
down_revision: Union[str, Sequence[str], None] = "0007"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add tracks.radio, false for every existing row (radio pieces made before cannot be told apart)."""
    # a plain ADD COLUMN: SQLite's batch mode would copy the table, and dropping the old one cascades to votes
    op.add_column("tracks", sa.Column("radio", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    """Drop it (SQLite's own DROP COLUMN, 3.35 and later: batch mode would copy the table, as above)."""
    op.drop_column("tracks", "radio")
