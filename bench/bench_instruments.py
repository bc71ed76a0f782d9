"""Benchmark: the instrument sources per part, measured from their files and from the same MIDI rendered
through each; prints JSON and writes side-by-side spectrograms.

Per candidate and part: the sampled velocity layers (distinct samples across the velocity zones of the
preset at a representative key: several zones that share one sample are one layer, shaped by a filter), the
sample rate, looped sustain, the noise floor, the spectral centroid of a soft and a loud note (and the
level-free timbre distance between them), the render time of the part's test phrase, and the load time
and memory of the font. The keys are measured again after the rainy music chain (the tine's attack and the
bark of a hard-hit Rhodes are what the chain's 3.8 kHz low-pass and drive act on). Hydrogen's drum kits are
not soundfonts (drumkit.xml + WAV/FLAC): their layers are read from the kit file, and they are not rendered.

    .venv/bin/python bench/bench_instruments.py [--out bench/results] [--date 2026-12-05]
"""

from __future__ import annotations

import argparse
import json
import resource
import struct
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import mido
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_average  # noqa: E402
from music import instruments  # noqa: E402
from music.analysis.timbre import spectrum, timbre_distance_db  # noqa: E402
from music.buses import MUSIC_RATE, SYNTH_GAIN, music_wet  # noqa: E402
from music.render_config import DEFAULT_SOUNDFONT, SAMPLE_RATE  # noqa: E402
from music.request import load_moods  # noqa: E402
from music.synth import Synth  # noqa: E402

MUSESCORE_SF2 = Path("/usr/share/sounds/sf2/MuseScore_General_Full.sf2")
MUSESCORE_SF3 = Path("/usr/share/sounds/sf3/MuseScore_General_Full.sf3")
HYDROGEN_DIR = Path("/usr/share/hydrogen/data/drumkits")
GM_FONTS = {"FluidR3_GM": DEFAULT_SOUNDFONT, "MuseScore_General sf2": MUSESCORE_SF2,
            "MuseScore_General sf3": MUSESCORE_SF3}  # fmt: skip
DRUM_KITS = {"AVL Red Zeppelin": instruments.AVL_RED_ZEPPELIN, "AVL Black Pearl": instruments.AVL_BLACK_PEARL}
# part -> (channel, GM program, the key its layers are read at, its soft and loud test note)
PARTS = {
    "keys (Rhodes, 4)": (0, 4, 60, 60),
    "bass (acoustic, 32)": (1, 32, 40, 40),
    "bass (finger, 33)": (1, 33, 40, 40),
    "melody (vibraphone, 11)": (2, 11, 72, 72),
    "melody (nylon guitar, 24)": (2, 24, 64, 64),
    "keys (study piano, 0)": (0, 0, 60, 60),
    "snare (38)": (9, 0, 38, 38),
    "closed hat (42)": (9, 0, 42, 42),
    "open hat (46)": (9, 0, 46, 46),
    "kick (36)": (9, 0, 36, 36),
}
SOFT, LOUD = 30, 115

# -- the soundfont's own structure -------------------------------------------------------------------------
KEY_RANGE, VEL_RANGE, INSTRUMENT, SAMPLE_ID, SAMPLE_MODES = 43, 44, 41, 53, 54


def read_pdta(path: Path) -> dict[str, list[tuple]]:
    """The preset, instrument and sample headers of a SoundFont 2 (or 3) file."""
    with path.open("rb") as fh:
        fh.seek(12)
        while True:
            cid, size = struct.unpack("<4sI", fh.read(8))
            kind = fh.read(4)
            if cid == b"LIST" and kind == b"pdta":
                pdta = fh.read(size - 4)
                break
            fh.seek(size - 4 + (size & 1), 1)
    raw, off = {}, 0
    while off + 8 <= len(pdta):
        cid, size = struct.unpack_from("<4sI", pdta, off)
        raw[cid.decode()] = pdta[off + 8 : off + 8 + size]
        off += 8 + size + (size & 1)
    fmts = {"phdr": "<20sHHHIII", "pbag": "<HH", "pgen": "<HH", "inst": "<20sH", "ibag": "<HH",
            "igen": "<HH", "shdr": "<20sIIIIIBbHH"}  # fmt: skip
    out = {}
    for name, fmt in fmts.items():
        n = struct.calcsize(fmt)
        out[name] = [struct.unpack_from(fmt, raw[name], i) for i in range(0, len(raw[name]) - n + 1, n)]
    return out


def _zones(bags, gens, first: int, last: int) -> list[dict[int, int]]:
    return [dict(gens[bags[b][0] : bags[b + 1][0]]) for b in range(first, last)]


def _range(amount: int | None) -> tuple[int, int]:
    return (0, 127) if amount is None else (amount & 0xFF, amount >> 8)


def preset_zones(pd, bank: int, program: int, key: int) -> tuple[str | None, list[tuple]]:
    """(preset name, [(vel lo, vel hi, sample start, sample rate, looped)]) of what sounds for `key`."""
    ph = pd["phdr"]
    idx = next((i for i, p in enumerate(ph[:-1]) if p[2] == bank and p[1] == program), None)
    if idx is None:
        return None, []
    found = []
    for pz in _zones(pd["pbag"], pd["pgen"], ph[idx][3], ph[idx + 1][3]):
        pk, pv = _range(pz.get(KEY_RANGE)), _range(pz.get(VEL_RANGE))
        if INSTRUMENT not in pz or not pk[0] <= key <= pk[1]:
            continue
        inst = pd["inst"]
        izs = _zones(pd["ibag"], pd["igen"], inst[pz[INSTRUMENT]][1], inst[pz[INSTRUMENT] + 1][1])
        glob = izs[0] if izs and SAMPLE_ID not in izs[0] else {}
        for iz in izs:
            z = {**glob, **iz}
            ik, iv = _range(z.get(KEY_RANGE)), _range(z.get(VEL_RANGE))
            lo, hi = max(pv[0], iv[0]), min(pv[1], iv[1])
            if SAMPLE_ID in iz and ik[0] <= key <= ik[1] and lo <= hi:
                s = pd["shdr"][z[SAMPLE_ID]]
                name = s[0].split(b"\0")[0].decode("latin1").replace("(L)", "").replace("(R)", "")
                found.append((lo, hi, (name, s[1] if not name[-2:].isdigit() else s[1]), s[5],
                              z.get(SAMPLE_MODES, 0) & 1 == 1))  # fmt: skip
    return ph[idx][0].split(b"\0")[0].decode("latin1"), found


def layer_facts(pd, bank: int, program: int, key: int) -> dict:
    """Velocity zones, sampled layers (distinct samples; a stereo pair counts once), rates, looped sustain."""
    name, zones = preset_zones(pd, bank, program, key)
    by_range: dict[tuple[int, int], set] = {}
    for lo, hi, sample, *_ in zones:
        by_range.setdefault((lo, hi), set()).add(sample[0])
    layers = len({frozenset(v) for v in by_range.values()})
    return {"preset": name, "velocity_zones": len(by_range), "sampled_layers": layers,
            "sample_rate_hz": sorted({z[3] for z in zones}), "looped_sustain": any(z[4] for z in zones)}  # fmt: skip


def hydrogen_kits() -> list[dict]:
    """Each installed Hydrogen kit: its licence and the most velocity layers of its snare and hats."""
    kits = []
    for xml in sorted(HYDROGEN_DIR.glob("*/drumkit.xml")):
        root = ET.parse(xml).getroot()
        ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
        layers = {}
        for inst in root.iter(f"{ns}instrument"):
            name = (inst.findtext(f"{ns}name") or "").lower()
            n = len(list(inst.iter(f"{ns}layer")))
            for part in ("snare", "hat", "kick"):
                if part in name or (part == "kick" and "bass" in name):
                    layers[part] = max(layers.get(part, 0), n)
        kits.append({"kit": xml.parent.name, "license": root.findtext(f"{ns}license") or "",
                     "max_layers": layers})  # fmt: skip
    return kits


# -- renders ---------------------------------------------------------------------------------------------------
def phrase(channel: int, program: int, notes: list[tuple[float, int, int, float]], seconds: float):
    """A MIDI file of `notes` (start s, pitch, velocity, length s) on `channel` at 120 bpm."""
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tick = lambda s: int(round(s * 960))  # noqa: E731  (120 bpm: 960 ticks a second)
    ev = [(0, mido.Message("program_change", channel=channel, program=program))]
    for t, p, v, d in notes:
        ev += [(tick(t), mido.Message("note_on", channel=channel, note=p, velocity=v)),
               (tick(t + d), mido.Message("note_off", channel=channel, note=p, velocity=0))]  # fmt: skip
    ev.append((tick(seconds), mido.MetaMessage("end_of_track")))
    ev.sort(key=lambda e: e[0])
    now = 0
    for t, msg in ev:
        tr.append(msg.copy(time=t - now))
        now = t
    return mid


def test_phrase(part: str) -> tuple[object, float]:
    """The same MIDI for every candidate of `part`: soft and loud single notes, then a short figure."""
    ch, prog, key, note = PARTS[part]
    if ch == 9:  # a groove bar: ghost, normal, accent at 8ths, then the soft/loud probes
        notes = [(0.0, note, SOFT, 0.1), (1.0, note, LOUD, 0.1)]
        notes += [(2.0 + i * 0.25, note, (25, 60, 90, 120)[i % 4], 0.05) for i in range(8)]
        return phrase(ch, prog, notes, 5.0), 5.0
    held = 1.4
    notes = [(0.0, note, SOFT, held), (1.6, note, LOUD, held)]
    chord = [note - 12, note - 5, note, note + 4]
    for i, v in enumerate((40, 70, 100, 125)):
        notes += [(3.2 + i * 0.8, p, v, 0.7) for p in chord]
    return phrase(ch, prog, notes, 6.6), 6.6


def synth_for(candidate: str, part: str, rate: int) -> tuple[Synth, float, float]:
    """(a synthesizer for `candidate`, its load seconds, its resident-memory growth in MB)."""
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    if candidate in DRUM_KITS:
        synth = Synth(DEFAULT_SOUNDFONT, rate, SYNTH_GAIN, ((9, DRUM_KITS[candidate]),))
    else:
        synth = Synth(GM_FONTS[candidate], rate, SYNTH_GAIN)
    return synth, time.perf_counter() - t0, _rss_mb() - rss0


def _rss_mb() -> float:
    """This process's resident memory now, in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def centroid(x: np.ndarray, rate: int) -> float:
    f, m = spectrum(x, rate)
    return float((f * m).sum() / max(m.sum(), 1e-12))


def db(x: float) -> float:
    return round(float(20 * np.log10(max(x, 1e-12))), 1)


def noise_floor_db(note: np.ndarray, rate: int) -> float:
    """The 10th percentile of a soft note's 20 ms levels above 8 kHz while it sounds, relative to its peak:
    hiss in the sample keeps this band from falling."""
    mono = note.mean(axis=0)
    from scipy.signal import butter, sosfilt

    hi = sosfilt(butter(4, min(8000, rate * 0.45), "highpass", fs=rate, output="sos"), mono)
    n = int(0.02 * rate)
    frames = np.sqrt(np.mean(hi[: len(hi) // n * n].reshape(-1, n) ** 2, axis=1))
    sounding = np.sqrt(np.mean(mono[: len(mono) // n * n].reshape(-1, n) ** 2, axis=1)) > 1e-4
    if not sounding.any():
        return -120.0
    return db(float(np.percentile(frames[sounding], 10))) - db(float(np.abs(mono).max()))


def measure(candidate: str, part: str, sound: dict) -> tuple[dict, np.ndarray, int]:
    ch, prog, key, note = PARTS[part]
    rate = SAMPLE_RATE if ch == 9 else MUSIC_RATE
    synth, load_s, rss_mb = synth_for(candidate, part, rate)
    midi, seconds = test_phrase(part)
    t0 = time.perf_counter()
    audio = synth.render(midi, seconds)
    render_s = time.perf_counter() - t0
    synth._fs.delete()  # its samples go before the next candidate's load is measured
    if candidate in DRUM_KITS:
        src = DRUM_KITS[candidate]
        facts = layer_facts(read_pdta(src.soundfont), src.bank, src.program, dict(src.notes).get(key, key))
    else:
        facts = layer_facts(read_pdta(GM_FONTS[candidate]), 128 if ch == 9 else 0, prog, key)
    span = 1.0 if ch == 9 else 1.6
    soft, loud = audio[:, : int(span * rate)], audio[:, int(span * rate) : int(2 * span * rate)]
    row = {**facts, "noise_floor_db": noise_floor_db(soft, rate),
           "centroid_soft_hz": round(centroid(soft, rate)), "centroid_loud_hz": round(centroid(loud, rate)),
           "level_soft_dbfs": db(float(np.abs(soft).max())), "level_loud_dbfs": db(float(np.abs(loud).max())),
           "soft_loud_timbre_db": round(timbre_distance_db(soft, loud, rate), 2),
           "render_ms": round(render_s * 1000, 1), "font_load_s": round(load_s, 2),
           "rss_growth_mb": round(rss_mb)}  # fmt: skip
    if part.startswith("keys (Rhodes"):
        wet = music_wet(audio.copy(), rate, sound["effects"], seed=1)
        ws, wl = wet[:, : int(span * rate)], wet[:, int(span * rate) : int(2 * span * rate)]
        row["after_chain"] = {"centroid_soft_hz": round(centroid(ws, rate)),
                              "centroid_loud_hz": round(centroid(wl, rate)),
                              "soft_loud_timbre_db": round(timbre_distance_db(ws, wl, rate), 2)}  # fmt: skip
        audio = wet
    return row, audio, rate


def spectrograms(part: str, renders: dict[str, tuple[np.ndarray, int]], path: Path) -> None:
    """One column per candidate: the same MIDI's spectrogram (dB, 0-11/16 kHz)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(renders), figsize=(4 * len(renders), 3.6), sharey=True)
    dither = np.random.default_rng(0)
    for ax, (name, (audio, rate)) in zip(np.atleast_1d(axes), renders.items(), strict=True):
        mono = audio.mean(axis=0) + 1e-7 * dither.standard_normal(audio.shape[1])  # digital silence: -140 dB
        ax.specgram(mono, NFFT=1024, Fs=rate, noverlap=768, cmap="magma", vmin=-140, vmax=-20)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("s")
        ax.set_ylim(0, min(16000, rate / 2))
    np.atleast_1d(axes)[0].set_ylabel("Hz")
    fig.suptitle(f"{part}: the same MIDI through each source (soft, loud, then a figure)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--date", default=time.strftime("%Y-%m-%d"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sound = load_moods()["rainy"].sound
    result: dict = {"date": args.date, "load_average": load_average(), "parts": {}, "hydrogen": []}
    for part, (ch, *_rest) in PARTS.items():
        cands = [c for c, p in GM_FONTS.items() if p.is_file()]
        if ch == 9:
            cands += [c for c, s in DRUM_KITS.items() if instruments.usable(s)]
        renders, rows = {}, {}
        for cand in cands:
            rows[cand], audio, rate = measure(cand, part, sound)
            renders[cand] = (audio, rate)
        result["parts"][part] = rows
        slug = part.split(" (")[0].replace(" ", "-") + "-" + part.split("(")[1].split(",")[0].split(")")[0]
        slug = slug.replace(" ", "-")
        spectrograms(part, renders, out / f"instruments-{slug}-{args.date}.png")
    if HYDROGEN_DIR.is_dir():
        result["hydrogen"] = hydrogen_kits()
    result["chosen"] = {str(ch): src.name for ch, src in instruments.CHOSEN.items()}
    text = json.dumps(result, indent=1)
    (out / f"instruments-{args.date}.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
