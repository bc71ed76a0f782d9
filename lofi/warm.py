"""Loading the audio stack ahead of the first track, and the composing engine of the processes that keep one."""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from music.render_config import RenderConfig

if TYPE_CHECKING:
    from compose.pipeline import Composer
    from lofi.settings import Settings
    from serving.backend import Backend

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


def open_composer(stack: contextlib.AsyncExitStack, backend: Backend, settings: Settings) -> Composer:
    """The composing engine over `backend` for a long-lived process (`lofi bot`, `lofi worker`), what it opens
    registered on `stack`: a render pool bounded by the cores (FluidSynth, pedalboard, numpy and ffmpeg release
    the GIL, while the jobs in flight share one generation batch), warmed before the first track, and the
    `Composer` over both."""
    from bot.app import render_pool_size
    from compose.pipeline import Composer

    pool = ThreadPoolExecutor(render_pool_size(settings.render_workers), thread_name_prefix="lofi-render")
    stack.callback(pool.shutdown, wait=False, cancel_futures=True)
    render = settings.render_config()
    pool.submit(warm_render_stack, render)  # the first track need not wait for the soundfont
    composer = Composer(backend, render, executor=pool)
    stack.push_async_callback(composer.close)
    return composer
