"""`lofi render`: tokens or a MIDI/MusicXML file -> a mastered LoFi MP3 (+ MIDI and cover) for a mood."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from lofi.settings import get_settings

MUSIC_SUFFIXES = (".mid", ".midi", ".mxl", ".musicxml", ".xml")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `render` subcommand."""
    p = subparsers.add_parser("render", help="render tokens or a MIDI/MusicXML file to a LoFi MP3")
    p.add_argument("source", type=Path, help=".json/.txt with token strings or ids, or a .mid/.mxl file")
    p.add_argument("--mood", default="chill", help="mood preset (see music/moods.toml) or 'random'")
    p.add_argument(
        "--out", type=Path, required=True, help="the .mp3 to write (the .mid and .png go beside it)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for key, tempo, arrangement and ambience")
    p.add_argument(
        "--length",
        type=float,
        default=None,
        help="seconds; the source's bars are looped or cut to fit (default: the source's own bars)",
    )
    p.add_argument("--soundfont", type=Path, default=None, help="an .sf2 (default: the settings' soundfont)")
    p.set_defaults(func=run)


def load_source(path: Path):
    """The `Score` in a token file (.json list / {'tokens': [...]}, or whitespace-separated .txt) or music file."""
    from music.tokens import Representation

    suffix = path.suffix.lower()
    if suffix in MUSIC_SUFFIXES:
        from music.parse import parse_file  # written alongside; imported only when needed

        return parse_file(path)
    text = path.read_text()
    if suffix == ".json":
        data = json.loads(text)
        tokens = data.get("tokens", data.get("ids")) if isinstance(data, dict) else data
    else:
        tokens = text.split()
    if not isinstance(tokens, list) or not tokens:
        raise ValueError(f"{path} holds no token list")
    if all(isinstance(t, str) and t.lstrip("-").isdigit() for t in tokens):
        tokens = [int(t) for t in tokens]
    return Representation().decode(tokens)


def run(args: argparse.Namespace) -> int:
    """Render the source with the mood and write the MP3, MIDI and cover."""
    from music.errors import MusicError
    from music.request import TrackRequest, plan_track
    from music.track import render_track

    config = get_settings().render_config()
    if args.soundfont is not None:
        config = replace(config, soundfont=args.soundfont)
    try:
        score = load_source(args.source)
        if score.n_bars <= 0:
            raise ValueError(f"{args.source} holds no bars of music")
        plan = plan_track(TrackRequest(length_s=args.length or score.seconds, mood=args.mood, seed=args.seed))
        if args.length is None:  # keep the source's own bars (and metre), at the mood's tempo
            first = min(score.time_signatures, key=lambda s: s.bar)
            plan = replace(plan, n_bars=score.n_bars, time_signature=(first.numerator, first.denominator))
        out = args.out if args.out.suffix.lower() == ".mp3" else args.out.with_suffix(".mp3")
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="lofi-cli-", dir=out.parent) as tmp:
            files = render_track(
                score,
                plan,
                Path(tmp),
                progress=lambda s: print(f"{s}...", file=sys.stderr),
                render=config,
            )
            shutil.move(files.mp3, out)
            shutil.move(files.midi, out.with_suffix(".mid"))
            shutil.move(files.cover, out.with_suffix(".png"))
    except (MusicError, ValueError, OSError) as exc:
        print(f"lofi render: {exc}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "mp3": str(out),
                "midi": str(out.with_suffix(".mid")),
                "cover": str(out.with_suffix(".png")),
                "title": files.title,
                "mood": files.mood,
                "key": files.key,
                "bpm": round(files.bpm, 2),
                "seconds": round(files.duration_s, 3),
                "bars": plan.n_bars,
                "lufs": round(files.loudness_lufs, 2),
                "true_peak_dbtp": round(files.true_peak_dbtp, 2),
                "timings": {k: round(v, 3) for k, v in files.timings.items()},
            },
            indent=2,
        )
    )
    return 0
