"""tracks and votes

Revision ID: 0001
Revises:
Create Date: 2026-11-24 20:15:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from db.models import UTCDateTime

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TRACK_STATUS = sa.Enum("queued", "generating", "done", "failed", name="trackstatus", native_enum=False,
                       length=20)


def upgrade() -> None:
    """Create tracks and votes."""
    op.create_table(
        "tracks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("user_name", sa.String(length=100), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=True),
        sa.Column("channel_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("mood_requested", sa.String(length=40), nullable=False),
        sa.Column("mood", sa.String(length=40), nullable=True),
        sa.Column("length_requested_s", sa.Float(), nullable=False),
        sa.Column("length_s", sa.Float(), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("bpm_requested", sa.Float(), nullable=True),
        sa.Column("bpm", sa.Float(), nullable=True),
        sa.Column("key", sa.String(length=20), nullable=True),
        sa.Column("versions", sa.JSON(), nullable=True),
        sa.Column("mp3_path", sa.String(length=500), nullable=True),
        sa.Column("midi_path", sa.String(length=500), nullable=True),
        sa.Column("cover_path", sa.String(length=500), nullable=True),
        sa.Column("status", TRACK_STATUS, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=True),
        sa.Column("tokens", sa.JSON(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracks")),
        sa.UniqueConstraint("message_id", name=op.f("uq_tracks_message_id")),
    )
    op.create_index(op.f("ix_tracks_user_id"), "tracks", ["user_id"], unique=False)
    op.create_index(op.f("ix_tracks_status"), "tracks", ["status"], unique=False)
    op.create_index(op.f("ix_tracks_created_at"), "tracks", ["created_at"], unique=False)
    op.create_table(
        "votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["track_id"], ["tracks.id"], name=op.f("fk_votes_track_id_tracks"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_votes")),
        sa.UniqueConstraint("track_id", "user_id", name="uq_votes_track_user"),
    )
    op.create_index(op.f("ix_votes_track_id"), "votes", ["track_id"], unique=False)


def downgrade() -> None:
    """Drop votes and tracks."""
    op.drop_index(op.f("ix_votes_track_id"), table_name="votes")
    op.drop_table("votes")
    op.drop_index(op.f("ix_tracks_created_at"), table_name="tracks")
    op.drop_index(op.f("ix_tracks_status"), table_name="tracks")
    op.drop_index(op.f("ix_tracks_user_id"), table_name="tracks")
    op.drop_table("tracks")
