"""radio stations (/lofi-radio state, kept across restarts)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:50:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from db.models import UTCDateTime

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Create radio_stations."""
    op.create_table(
        "radio_stations",
        sa.Column("guild_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("voice_channel_id", sa.BigInteger(), nullable=False),
        sa.Column("text_channel_id", sa.BigInteger(), nullable=True),
        sa.Column("mood", sa.String(length=40), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("always_on", sa.Boolean(), nullable=False),
        sa.Column("stop_at", UTCDateTime(), nullable=True),
        sa.Column("started_by", sa.BigInteger(), nullable=True),
        sa.Column("started_by_name", sa.String(length=100), nullable=True),
        sa.Column("now_playing_track_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("guild_id", name=op.f("pk_radio_stations")),
    )


def downgrade() -> None:
    """Drop radio_stations."""
    op.drop_table("radio_stations")
