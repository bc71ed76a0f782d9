"""What the bot reads from its settings. The entry layer (`lofi.settings.Settings`) provides it; the bot
receives it and never reads the environment itself."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import SecretStr


class BotSettings(Protocol):
    """The settings the bot uses (`lofi.settings.Settings` has them all)."""

    discord_token: SecretStr | None
    discord_guild_id: int | None
    discord_api_base: str | None
    discord_gateway_url: str | None
    admin_user_ids: list[int]
    admin_role_ids: list[int]
    shard_count: int | None
    shard_ids: list[int] | None
    serving_address: str | None
    serving_port: int
    serving_timeout_s: float
    models_dir: Path
    database_url: str
    data_dir: Path
    out_dir: Path
    out_max_bytes: int
    cache_dir: Path
    soundfont: Path
    upload_limit_bytes: int
    min_length_s: float
    max_length_s: float
    queue_size: int
    workers: int
    render_workers: int
    cooldown_s: float
    radio_piece_length_s: float
    radio_crossfade_s: float
    radio_ahead_s: float
    vote_threshold: int
    retrain_preset: str
    retrain_upload_max_bytes: int

    @property
    def corpus_cache_dir(self) -> Path:
        """The corpus token cache shared with `lofi train`."""
        ...
