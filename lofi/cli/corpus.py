"""`lofi corpus stats|check PATH...`: what the corpus holds, and how faithfully the tokens keep it.

No TensorFlow here: these commands only parse and tokenize (through the cache in `training.corpus`).
"""

from __future__ import annotations

import argparse
import bisect
import json
from collections import Counter
from pathlib import Path

from lofi.cli.arguments import corpus_cache, reports_data_errors
from lofi.settings import get_settings
from music.chords import PITCH_NAMES
from music.tokens import HEADER_LEN, TEMPO_CENTERS, TEMPO_EDGES, Representation

CHECK_MIN_SHARE = 0.99


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `corpus` command (`stats`, `check`) to the `lofi` parser."""
    corpus = subparsers.add_parser("corpus", help="inspect and check the training corpus")
    sub = corpus.add_subparsers(dest="corpus_command", required=True, metavar="SUBCOMMAND")
    for name, helptext in (  # argparse %-formats help: "99%%" prints 99%
        ("stats", "files read and skipped, pieces, tokens, keys and tempi"),
        ("check", f"encode -> decode round trip of melody notes (needs >= {CHECK_MIN_SHARE:.0%}%)"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="corpus folder(s) or zip file(s)")
        p.add_argument("--json", action="store_true", help="print JSON instead of text")
        p.add_argument(
            "--cache", type=Path, default=None, help="cache folder (default: settings cache_dir/corpus)"
        )
        p.add_argument("--workers", type=int, default=2, help="parser processes (default 2)")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.set_defaults(func=run)


@reports_data_errors
def run(args: argparse.Namespace) -> int:
    """`lofi corpus stats` or `lofi corpus check`."""
    return {"stats": _stats, "check": _check}[args.corpus_command](args)


def _load(args):
    from training.corpus import load_corpus

    return load_corpus(
        args.paths,
        cache_dir=args.cache or corpus_cache(get_settings()),
        workers=max(1, args.workers),
        progress=not args.no_progress,
    )


def _tempo_label(i: int) -> str:
    lo = 0 if i == 0 else TEMPO_EDGES[i - 1]
    hi = TEMPO_EDGES[i]
    return f"{lo:g}-{hi:g}" if hi != float("inf") else f">{lo:g}"


def _count_piece(p, count: dict[str, Counter[str]]) -> None:
    """Add one piece's key, mode, tempo bucket, source, metre and parse provenance to `count`."""
    count["keys"][f"{PITCH_NAMES[p.tonic % 12]} {p.mode}"] += 1
    count["modes"][p.mode] += 1
    count["tempi"][_tempo_label(bisect.bisect_left(TEMPO_EDGES, p.bpm))] += 1
    count["sources"][p.source] += 1
    count["sigs"][p.stats.get("time_signature", "?")] += 1
    parse = p.stats.get("parse", {})
    count["chords"][parse.get("chords_from", "?")] += 1
    count["melody"][parse.get("melody_from", "?").split(":")[0]] += 1
    count["key"][parse.get("key_from", "?")] += 1
    count["tempo"][parse.get("tempo_from", "?")] += 1


def corpus_stats(result) -> dict:
    """The numbers `lofi corpus stats` prints, from a `CorpusResult`."""
    rep = Representation()
    pieces = result.pieces
    used: set[int] = set()
    tokens = bars = 0
    names = ("keys", "modes", "tempi", "sigs", "sources", "chords", "melody", "key", "tempo")
    count: dict[str, Counter[str]] = {name: Counter() for name in names}
    for p in pieces:
        used.update(p.ids)
        tokens += len(p.ids)
        bars += p.n_bars
        _count_piece(p, count)
    bpms = sorted(p.bpm for p in pieces)
    body = tokens - (HEADER_LEN + 1) * len(pieces)
    return {
        "paths": [str(p) for p in getattr(result, "paths", [])],
        "files_read": result.files_read,
        "files_skipped": len(result.skipped),
        "skipped_by_reason": dict(Counter(r for _, r in result.skipped).most_common()),
        "skipped": [{"file": f, "reason": r} for f, r in result.skipped],
        "pieces": len(pieces),
        "pieces_by_source": dict(count["sources"].most_common()),
        "from_cache": result.from_cache,
        "parsed_this_run": result.parsed,
        "tokens": tokens,
        "bars": bars,
        "tokens_per_bar": round(body / bars, 2) if bars else 0.0,
        "tokens_per_piece": round(tokens / len(pieces), 1) if pieces else 0.0,
        "vocab_used": len(used),
        "vocab_size": len(rep.vocab),
        "modes": dict(count["modes"].most_common()),
        "keys": dict(count["keys"].most_common()),
        "tempo_bpm": {
            "min": bpms[0] if bpms else None,
            "median": bpms[len(bpms) // 2] if bpms else None,
            "max": bpms[-1] if bpms else None,
            "buckets": {
                _tempo_label(i): count["tempi"].get(_tempo_label(i), 0) for i in range(len(TEMPO_CENTERS))
            },
        },
        "time_signatures": dict(count["sigs"].most_common()),
        "chords_from": dict(count["chords"].most_common()),
        "melody_from": dict(count["melody"].most_common()),
        "key_from": dict(count["key"].most_common()),
        "tempo_from": dict(count["tempo"].most_common()),
        "seconds": round(result.seconds, 2),
    }


def corpus_check(result) -> dict:
    """The numbers `lofi corpus check` prints: melody and chord round trip over every piece."""
    notes = notes_ok = chords = chords_ok = vel_changed = 0
    lost, parse_dropped, approx = Counter(), Counter(), Counter()
    symbols = symbols_exact = snapped = source_notes = 0
    worst = []
    for p in result.pieces:
        rt = p.stats.get("round_trip", {})
        notes += rt.get("notes", 0)
        notes_ok += rt.get("notes_ok", 0)
        chords += rt.get("chords", 0)
        chords_ok += rt.get("chords_ok", 0)
        vel_changed += rt.get("velocity_changed", 0)
        lost.update(p.stats.get("encode", {}).get("lost", {}))
        parse = p.stats.get("parse", {})
        parse_dropped.update(parse.get("notes_dropped", {}))
        approx.update(parse.get("chord_approx", {}))
        symbols += parse.get("chord_symbols", 0)
        symbols_exact += parse.get("chord_symbols_exact", 0)
        snapped += parse.get("durations_snapped", 0)
        source_notes += parse.get("notes_source", 0)
        if rt.get("notes") and rt["notes_ok"] < rt["notes"]:
            worst.append((rt["notes_ok"] / rt["notes"], p.name))
    share = notes_ok / notes if notes else 0.0
    # Against the notes in the files: what parsing dropped or re-timed counts as lost too.
    kept_untouched = notes_ok - snapped
    return {
        "pieces": len(result.pieces),
        "melody_notes": notes,
        "melody_notes_exact": notes_ok,
        "melody_share_exact": round(share, 6),
        "threshold": CHECK_MIN_SHARE,
        "passed": share >= CHECK_MIN_SHARE,
        "lost_in_encoding": dict(lost.most_common()),
        "source_share_exact": round(kept_untouched / source_notes, 6) if source_notes else None,
        "velocity_quantised": vel_changed,
        "worst_pieces": [{"file": n, "share": round(s, 4)} for s, n in sorted(worst)[:10]],
        "chords": chords,
        "chords_exact": chords_ok,
        "chord_share_exact": round(chords_ok / chords, 6) if chords else None,
        "parsing": {
            "source_notes": source_notes,
            "notes_dropped": dict(parse_dropped.most_common()),
            "durations_snapped_to_grid": snapped,
            "chord_symbols": symbols,
            "chord_symbols_exact_quality": symbols_exact,
            "chord_symbols_approximated": dict(approx.most_common(20)),
        },
        "seconds": round(result.seconds, 2),
    }


def _print_text(title: str, data: dict) -> None:
    print(title)
    for k, v in data.items():
        if k == "skipped":
            for item in v[:20]:
                print(f"    {item['file']}: {item['reason']}")
            if len(v) > 20:
                print(f"    ... and {len(v) - 20} more (see --json)")
            continue
        if isinstance(v, dict):
            print(f"  {k}:")
            for kk, vv in v.items():
                print(f"    {kk}: {vv}")
        else:
            print(f"  {k}: {v}")


def _stats(args: argparse.Namespace) -> int:
    """`lofi corpus stats`."""
    data = corpus_stats(_load(args))
    data["paths"] = [str(p) for p in args.paths]
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _print_text("corpus stats", data)
    return 0


def _check(args: argparse.Namespace) -> int:
    """`lofi corpus check`: exit status 1 when fewer than 99% of melody notes survive."""
    data = corpus_check(_load(args))
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _print_text("corpus check", data)
    return 0 if data["passed"] else 1
