"""retrain runs; track titles; status+created index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 20:20:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

from db.models import UTCDateTime

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

RETRAIN_STATUS = sa.Enum("running", "promoted", "kept", "failed", name="retrainstatus", native_enum=False,
                         length=20)


def upgrade() -> None:
    """Add retrain_runs, tracks.title and an index for the recent-tracks queries."""
    op.create_table(
        "retrain_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("user_name", sa.String(length=100), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=True),
        sa.Column("status", RETRAIN_STATUS, nullable=False),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("old_version", sa.String(length=100), nullable=True),
        sa.Column("new_version", sa.String(length=100), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_runs")),
    )
    op.create_index(op.f("ix_retrain_runs_status"), "retrain_runs", ["status"], unique=False)
    with op.batch_alter_table("tracks") as batch_op:
        batch_op.add_column(sa.Column("title", sa.String(length=200), nullable=True))
    op.create_index("ix_tracks_status_created", "tracks", ["status", "created_at"], unique=False)


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_index("ix_tracks_status_created", table_name="tracks")
    with op.batch_alter_table("tracks") as batch_op:
        batch_op.drop_column("title")
    op.drop_index(op.f("ix_retrain_runs_status"), table_name="retrain_runs")
    op.drop_table("retrain_runs")
