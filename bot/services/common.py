"""What several services share: who asked, and plain JSON for the database."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Requester:
    """Who asked, and where."""

    user_id: int
    user_name: str
    guild_id: int | None = None
    channel_id: int | None = None


@dataclass(frozen=True)
class Viewer:
    """Who used a button, and where: in a guild, or (`guild_id` None) in a DM or group DM (`channel_id`)."""

    user_id: int
    guild_id: int | None
    channel_id: int | None = None

    def may_use(self, guild_id: int | None, user_id: int, channel_id: int | None = None) -> bool:
        """Whether a track asked for (or posted) in `guild_id` by `user_id` (posted in `channel_id`) is this
        viewer's to use: a guild's tracks stay in that guild; outside guilds the viewer's own, or one posted in
        this very DM or group DM, which everyone in it sees (a custom id can name any track)."""
        if self.guild_id is not None:
            return guild_id == self.guild_id
        if user_id == self.user_id:
            return True
        return guild_id is None and channel_id is not None and channel_id == self.channel_id


def jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return json.loads(json.dumps(value, default=str))
