"""Loading the audio stack ahead of the first track, for the entry points that compose."""

from __future__ import annotations

import logging

from music.render_config import RenderConfig

log = logging.getLogger(__name__)


def warm_render_stack(config: RenderConfig) -> None:
    """Import the audio stack and load the soundfont and grooves before the first track needs them.

    Run it on another thread while the models load (`lofi generate`) or in the render pool (`lofi bot`): the
    import itself is part of what it saves, so it happens here, not in the caller. A failure is only logged;
    the first render reports a real problem (no soundfont, say) with its own message.
    """
    try:
        from music.track import warm_up

        warm_up(config)
    except Exception as exc:
        log.warning("could not load the audio stack ahead of the first track: %s", exc)
