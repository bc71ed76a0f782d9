"""custom radio stations (/lofi-radio station-create: a named mood, tempo and key per guild)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 14:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from db.models import UTCDateTime

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Create radio_custom_stations (a guild's names are unique: the unique index also serves its look-ups)."""
    op.create_table(
        "radio_custom_stations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("mood", sa.String(length=40), nullable=False),
        sa.Column("bpm", sa.Integer(), nullable=True),
        sa.Column("key", sa.String(length=20), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_radio_custom_stations")),
        sa.UniqueConstraint("guild_id", "name", name="uq_radio_custom_stations_guild_name"),
    )


def downgrade() -> None:
    """Drop radio_custom_stations."""
    op.drop_table("radio_custom_stations")
