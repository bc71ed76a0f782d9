"""The one typed reader of the environment (and `.env`). Secrets never appear in repr or logs."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from music.export import UPLOAD_LIMIT_BYTES
from music.limits import MAX_LENGTH_S, MIN_LENGTH_S
from music.render_config import DEFAULT_SOUNDFONT, RenderConfig

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every knob of the project, read from environment variables or `.env`."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Discord
    discord_token: SecretStr | None = None
    discord_guild_id: int | None = None
    discord_api_base: str | None = (
        None  # e.g. http://127.0.0.1:8080/api/v10 for a test or self-hosted endpoint
    )
    discord_gateway_url: str | None = None  # e.g. ws://127.0.0.1:8080/gateway
    admin_user_ids: list[int] = Field(default_factory=list)
    admin_role_ids: list[int] = Field(default_factory=list)

    # Sharding (Discord requires it from 2,500 guilds). SHARD_COUNT unset: the count Discord recommends
    # (GET /gateway/bot). SHARD_IDS (JSON, e.g. [0,1]; needs SHARD_COUNT): the shards this process runs, for
    # several processes that split the shards between them; unset: all of them.
    shard_count: int | None = Field(default=None, ge=1)
    shard_ids: list[int] | None = None

    @model_validator(mode="after")
    def _check_shards(self) -> Settings:
        """SHARD_IDS needs SHARD_COUNT, and each id is in [0, SHARD_COUNT)."""
        if self.shard_ids is not None:
            if self.shard_count is None:
                raise ValueError("SHARD_IDS needs SHARD_COUNT (the total number of shards)")
            bad = [i for i in self.shard_ids if not 0 <= i < self.shard_count]
            if bad or not self.shard_ids or len(set(self.shard_ids)) != len(self.shard_ids):
                raise ValueError(
                    f"SHARD_IDS must be distinct ids in [0, {self.shard_count}), not {self.shard_ids}"
                )
        return self

    # Model serving
    serving_address: str | None = None  # host:port of TF Serving; unset = start the embedded server
    serving_port: int = 8500
    serving_timeout_s: float = 5.0
    models_dir: Path = ROOT / "models"

    # Storage
    database_url: str = f"sqlite+aiosqlite:///{ROOT / 'var' / 'lofi.sqlite3'}"
    data_dir: Path = ROOT / "data" / "corpus"
    out_dir: Path = ROOT / "out"
    # out/ is trimmed to this, oldest track folders first, before each track (posted tracks live on Discord;
    # a button on a trimmed one says the track is gone). 0: never trimmed.
    out_max_bytes: int = Field(default=2 * 1024**3, ge=0)
    cache_dir: Path = ROOT / ".cache"

    # Sound
    soundfont: Path = DEFAULT_SOUNDFONT
    upload_limit_bytes: int = UPLOAD_LIMIT_BYTES

    # Requests and the job queue
    min_length_s: float = MIN_LENGTH_S
    max_length_s: float = MAX_LENGTH_S
    queue_size: int = 8
    workers: int = 8  # jobs in flight at once: their generation is shared (one batch), their rendering pooled
    render_workers: int = 0  # tracks rendering at once; 0 = one per CPU core
    cooldown_s: float = 20.0

    # Workers on a job engine (Celery on Redis). Unset BROKER_URL: the bot makes its tracks in-process.
    broker_url: str | None = None  # e.g. redis://127.0.0.1:6379/0 (broker and result store)
    job_timeout_s: float = (
        900.0  # the longest a track may take from queuing to result (a redelivery included)
    )
    job_redeliver_s: float = (
        300.0  # a job whose worker vanished is taken again after this (> the slowest job)
    )
    worker_concurrency: int = 4  # jobs one `lofi worker` runs at once (they share its generation batch)

    # The voice-channel radio (/lofi-radio): piece length, crossfade, audio kept composed ahead of playback
    radio_piece_length_s: float = 120.0
    radio_crossfade_s: float = 4.0
    radio_ahead_s: float = 45.0

    # Retraining from votes
    vote_threshold: int = 1
    retrain_preset: str = "quick"  # training preset of /lofi-retrain
    # The most a /lofi-retrain music attachment may weigh (the guild's own upload limit applies first): it is
    # downloaded to disk, never held in memory, and bounds the per-run folder.
    retrain_upload_max_bytes: int = Field(default=100 * 1024**2, gt=0)

    @property
    def corpus_cache_dir(self) -> Path:
        """Where the parsed and tokenized corpus is cached: one folder for `lofi train`, `lofi corpus` and
        `/lofi-retrain`, so none of them re-parses what another already did."""
        return Path(self.cache_dir) / "corpus"

    def render_config(self) -> RenderConfig:
        """What every render takes from here: soundfont, grooves (and their cache), the MP3 size limit."""
        return RenderConfig(
            soundfont=Path(self.soundfont),
            groove_dir=Path(self.data_dir) / "groove",
            cache_dir=Path(self.cache_dir),
            size_limit=self.upload_limit_bytes,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
