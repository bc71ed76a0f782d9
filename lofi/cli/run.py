"""`lofi run`: the main job behind `make run`.

Trains the quick models when there are none, then either starts the bot (DISCORD_TOKEN set; the model server
is the live one at SERVING_ADDRESS, or an embedded one) or, without a token, makes a demo track and says how
to connect the bot to a Discord server.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lofi.cli.arguments import corpus_cache
from lofi.settings import get_settings

log = logging.getLogger(__name__)

# View Channels, Send Messages, Embed Links, Attach Files, Read Message History, Add Reactions; Connect and
# Speak for the voice-channel radio (/lofi-radio).
BOT_PERMISSIONS = 1024 + 2048 + 16384 + 32768 + 65536 + 64 + (1 << 20) + (1 << 21)

CONNECT_HELP = """\
To run it in Discord:
  1. https://discord.com/developers/applications -> New Application -> Bot -> Reset Token; copy the token.
     No privileged intents are needed (slash commands, reaction and voice-state events only).
  2. Invite it (replace APP_ID with the application's id, from General Information):
     https://discord.com/oauth2/authorize?client_id=APP_ID&scope=bot+applications.commands&permissions={perms}
     (permissions: view channels, send messages, embed links, attach files, read history, add reactions,
      connect and speak for /lofi-radio)
  3. Put the token in .env (never commit it):  echo DISCORD_TOKEN=... >> .env
     Optional: DISCORD_GUILD_ID=<your server id> makes the slash commands appear at once.
  4. make run   # starts the model server and the bot; then type /lofi length:2m mood:rainy,
     or join a voice channel and type /lofi-radio start mood:chill
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `lofi run`."""
    p = subparsers.add_parser("run", help="the main job: train if needed, then the bot (or a demo track)")
    p.add_argument(
        "--preset", default="quick", help="training preset when no models exist (default %(default)s)"
    )
    p.add_argument("--length", default="1m", help="demo track length without a token (default %(default)s)")
    p.add_argument("--mood", default="rainy", help="demo track mood (default %(default)s)")
    p.add_argument("--seed", type=int, default=7, help="demo track seed (default %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train if needed, then run the bot or make a demo track."""
    from lofi.model_server import live_address

    settings = get_settings()
    models = Path(settings.models_dir)
    address = live_address(settings.serving_address, settings.serving_timeout_s)
    if address is None:
        code = _ensure_models(models, settings.data_dir, corpus_cache(settings), args.preset)
        if code:
            return code
    # address None: the bot and the demo each start the embedded server over MODELS_DIR.
    settings = settings.model_copy(update={"serving_address": address})

    token = settings.discord_token.get_secret_value().strip() if settings.discord_token else ""
    if token:
        from lofi.cli.bot import run_bot

        return run_bot(settings)

    from lofi.cli.generate import generate

    out = Path(settings.out_dir) / "demo" / f"lofi-{args.mood}-{args.seed}.mp3"
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"No DISCORD_TOKEN: making a {args.length} '{args.mood}' demo track...", flush=True)
    code = generate(settings, length=args.length, mood=args.mood, seed=args.seed, out=out, models=models)
    if code:
        return code
    print(f"\nDemo track: {out}\n  MIDI and cover image beside it in {out.parent}/\n")
    print(CONNECT_HELP.format(perms=BOT_PERMISSIONS))
    return 0


def _ensure_models(models: Path, data_dir: Path, cache_dir: Path, preset: str) -> int:
    """Train and export the ensemble when `models` holds no complete version; 0 on success."""
    from training.export import latest_version

    version = latest_version(models)
    if version is not None:
        log.info("models: version %s in %s", version, models)
        return 0
    print(
        f"No models in {models}: training the '{preset}' ensemble on {data_dir} "
        "(a few minutes on 2 cores; progress below)...",
        flush=True,
    )
    from training.retrain import retrain

    result = retrain(models, [data_dir], preset=preset, cache_dir=cache_dir)
    if not result.promoted or latest_version(models) is None:
        print(f"lofi run: training did not produce models: {result.reason}", file=sys.stderr)
        return 1
    print(f"Trained and exported version {result.new_version}: {result.reason}", flush=True)
    return 0
