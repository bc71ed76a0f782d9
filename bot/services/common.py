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


def jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return json.loads(json.dumps(value, default=str))
