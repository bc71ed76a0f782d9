"""The tables: tracks, votes on them, retrain runs, radio stations and custom stations (SQLAlchemy 2.0 style)."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base; naming convention keeps constraint names stable across SQLite and Postgres."""

    type_annotation_map = {dict[str, Any]: JSON, list[int]: JSON}


Base.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class TrackStatus(enum.StrEnum):
    """Life cycle of a track: queued -> generating -> done | failed."""

    queued = "queued"
    generating = "generating"
    done = "done"
    failed = "failed"


class RetrainStatus(enum.StrEnum):
    """Outcome of a retrain: running, then promoted (new version serving), kept (old one better) or failed."""

    running = "running"
    promoted = "promoted"
    kept = "kept"
    failed = "failed"


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite drops the offset; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


# Discord snowflakes exceed 32 bits.
Snowflake = BigInteger
_tz = UTCDateTime


class Track(Base):
    """One requested track, from the request to the posted files."""

    __tablename__ = "tracks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Snowflake, index=True)
    user_name: Mapped[str] = mapped_column(String(100))
    guild_id: Mapped[int | None] = mapped_column(Snowflake)
    channel_id: Mapped[int | None] = mapped_column(Snowflake)
    message_id: Mapped[int | None] = mapped_column(Snowflake, unique=True)
    mood_requested: Mapped[str] = mapped_column(String(40))
    mood: Mapped[str | None] = mapped_column(String(40))
    length_requested_s: Mapped[float] = mapped_column(Float)
    length_s: Mapped[float | None] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(BigInteger)
    bpm_requested: Mapped[float | None] = mapped_column(Float)
    bpm: Mapped[float | None] = mapped_column(Float)
    key_requested: Mapped[str | None] = mapped_column(String(20))  # as music.keys.key_text writes it
    key: Mapped[str | None] = mapped_column(String(20))
    # a radio piece: planned without intro, outro or fades, so its stems, loop and extension replay it so
    radio: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    title: Mapped[str | None] = mapped_column(String(200))
    versions: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    mp3_path: Mapped[str | None] = mapped_column(String(500))
    midi_path: Mapped[str | None] = mapped_column(String(500))
    cover_path: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[TrackStatus] = mapped_column(
        Enum(TrackStatus, native_enum=False, length=20, validate_strings=True),
        default=TrackStatus.queued,
        index=True,
    )
    error: Mapped[str | None] = mapped_column(Text)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    tokens: Mapped[list[int] | None] = mapped_column(JSON)
    # While the track is being made: the interaction to tell if a restart interrupts it (Discord lets its
    # token edit the reply for 15 minutes). Cleared when the track is done or failed.
    reply_application_id: Mapped[int | None] = mapped_column(Snowflake)
    reply_token: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(_tz, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(_tz)
    finished_at: Mapped[datetime | None] = mapped_column(_tz)

    votes: Mapped[list[Vote]] = relationship(
        back_populates="track", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Track {self.id} {self.status} {self.mood or self.mood_requested} by {self.user_id}>"


class Vote(Base):
    """One user's vote on one track: +1 or -1, following the vote reactions the user still has on the message
    (`reacted_up`, `reacted_down`; with both, the one added last counts). No reaction left: no row."""

    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("track_id", "user_id", name="uq_votes_track_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(Snowflake)
    value: Mapped[int] = mapped_column(Integer)
    reacted_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    reacted_down: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(_tz, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(_tz, default=utcnow, onupdate=utcnow)

    track: Mapped[Track] = relationship(back_populates="votes")


class RetrainRun(Base):
    """One retrain requested by an admin, its parameters, metrics and outcome."""

    __tablename__ = "retrain_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Snowflake)
    user_name: Mapped[str] = mapped_column(String(100))
    guild_id: Mapped[int | None] = mapped_column(Snowflake)
    status: Mapped[RetrainStatus] = mapped_column(
        Enum(RetrainStatus, native_enum=False, length=20, validate_strings=True),
        default=RetrainStatus.running,
        index=True,
    )
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    old_version: Mapped[str | None] = mapped_column(String(100))
    new_version: Mapped[str | None] = mapped_column(String(100))
    message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(_tz, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(_tz)


Index("ix_tracks_status_created", Track.status, Track.created_at)


class RadioStation(Base):
    """One guild's radio (`/lofi-radio`): where it plays, its mood, 24/7 mode and sleep timer. A row with
    `active` set is started again after a restart."""

    __tablename__ = "radio_stations"

    guild_id: Mapped[int] = mapped_column(Snowflake, primary_key=True, autoincrement=False)
    voice_channel_id: Mapped[int] = mapped_column(Snowflake)
    text_channel_id: Mapped[int | None] = mapped_column(Snowflake)
    mood: Mapped[str] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    always_on: Mapped[bool] = mapped_column(Boolean, default=False)
    stop_at: Mapped[datetime | None] = mapped_column(_tz)
    started_by: Mapped[int | None] = mapped_column(Snowflake)
    started_by_name: Mapped[str | None] = mapped_column(String(100))
    now_playing_track_id: Mapped[int | None] = mapped_column(Integer)
    message_id: Mapped[int | None] = mapped_column(Snowflake)
    updated_at: Mapped[datetime] = mapped_column(_tz, default=utcnow, onupdate=utcnow)


class CustomStation(Base):
    """A radio station a guild's admin created (`/lofi-radio station-create`): a name, unique in its guild, for
    a mood with an optional tempo and key. Guilds with the same recipe share one broadcast (`bot.radio.recipes`)."""

    __tablename__ = "radio_custom_stations"
    __table_args__ = (UniqueConstraint("guild_id", "name", name="uq_radio_custom_stations_guild_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    guild_id: Mapped[int] = mapped_column(Snowflake)
    name: Mapped[str] = mapped_column(String(32))
    mood: Mapped[str] = mapped_column(String(40))
    bpm: Mapped[int | None] = mapped_column(Integer)
    key: Mapped[str | None] = mapped_column(String(20))  # as music.keys.key_text writes it
    created_by: Mapped[int | None] = mapped_column(Snowflake)
    created_at: Mapped[datetime] = mapped_column(_tz, default=utcnow)
