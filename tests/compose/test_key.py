"""An asked key is the key of the track: the plan's, the one the shipped models write in (the header's mode,
decoded at the key's tonic) and the arranger voices, as music21's key finder reads the arranged MIDI.

The key finder is the one `bench/bench_music.py` scores the moods with (`find_key`: music21's `analyze('key')`
on the whole file). The shipped models and the seeds fix every track, so the counts below only move
when the models are retrained; measured 2026-12-04: 186 of 192 tracks (the 24 keys, 8 seeds each) and 124 of
128 (4 moods in their own and the other mode, 16 seeds each) read as asked; the misses read a fifth above or
the relative minor, as the key finder also misreads about 18% of
the corpus's own songs (bench/results/music-shipped-2026-12-01.json).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import mido
import pytest

from compose.continuation import extended_plan
from compose.loop import generate
from music.analysis.features import find_key
from music.arrange import arrange
from music.keys import parse_key
from music.request import TrackRequest, load_moods, plan_track
from music.tokens import Representation
from music.track import fit_to_plan
from serving.local import open_local_backend

ROOT = Path(__file__).resolve().parents[2]
LOFI = [sys.executable, "-m", "lofi.cli"]
SEEDS = range(8)
# Two moods asked for the other mode (the new case: rainy is minor, sunny major), two in their own mode, one
# with no mode word at all.
KEYS = {("rainy", "Eb major"), ("sunny", "F# minor"), ("chill", "A minor"), ("night", "D")}


def test_extend_keeps_the_asked_key():
    base = TrackRequest(30, "rainy", 7, key="Eb major")
    longer = extended_plan(base, 60)
    assert (longer.tonic, longer.mode) == (3, "major") and longer.header == plan_track(base).header
    assert longer.request.key == "Eb major" and longer.n_bars > plan_track(base).n_bars


async def _keys_found(tmp_path: Path) -> dict[tuple[str, str], list[tuple[int, str]]]:
    rep = Representation()
    found: dict[tuple[str, str], list[tuple[int, str]]] = {}
    async with open_local_backend(ROOT / "models") as backend:
        for mood, key in sorted(KEYS):
            for seed in SEEDS:
                plan = plan_track(TrackRequest(30, mood, seed, key=key), rep)
                gen = await generate(backend, plan, rep=rep)
                score = rep.decode(gen.tokens[0], tonic=plan.tonic, bpm=plan.bpm)
                arr = arrange(fit_to_plan(score, plan), plan.mood.sound, n_bars=plan.n_bars, seed=seed)
                path = arr.write(tmp_path / f"{mood}-{seed}.mid")
                assert arr.tonic == plan.tonic and arr.mode == plan.mode  # what the MIDI file declares
                found.setdefault((mood, key), []).append(await asyncio.to_thread(find_key, path))
    return found


@pytest.mark.slow
async def test_the_key_finder_hears_the_asked_key(tmp_path):
    found = await _keys_found(tmp_path)
    for (mood, key), keys in found.items():
        tonic, mode = parse_key(key)
        asked = (tonic, mode or load_moods()[mood].mode)
        heard = sum(k == asked for k in keys)
        assert heard >= 7, f"{mood} in {key}: music21 heard {keys} over seeds {list(SEEDS)}"


@pytest.mark.slow
def test_generate_writes_the_asked_key(tiny_models, tmp_path):
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("SERVING_ADDRESS", None)
    argv = ["generate", "--length", "0:16", "--mood", "rainy", "--seed", "2", "--key", "eb MAJ", "--json"]
    out = tmp_path / "t.mp3"
    proc = subprocess.run(
        [*LOFI, *argv, "--models", str(tiny_models), "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["key"] == "Eb major" and out.is_file()  # rainy is a minor mood: the key's mode wins
    metas = [m for t in mido.MidiFile(summary["midi"]).tracks for m in t if m.type == "key_signature"]
    assert [m.key for m in metas] == ["Eb"]


@pytest.mark.parametrize("key", ["H minor", "Eb dorian", ""])
def test_generate_refuses_a_bad_key_in_one_line(key, tmp_path):
    proc = subprocess.run(
        [*LOFI, "generate", "--mood", "chill", "--key", key, "--models", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"lofi generate: {key!r} is not a key; write a note A to G")
