"""Chords guessed from the notes of a file that names none: bare MIDI, and lead sheets without symbols.

Each half bar's pitch-class profile is matched against chord templates, with the bass as evidence for the root
and the key as a prior; a Viterbi pass then smooths the path. The same pass, beat by beat, finds where the
downbeats of a file with placeholder bar lines must be (`downbeat_shift`).
"""

from __future__ import annotations

import bisect

from music.chords import NO_CHORD, pitch_classes
from music.score import TICKS_PER_BEAT, Chord, Score
from music.score_building import merge_chords

# Chord inference: the qualities it may choose, each with a prior cost (simple triads first: a quality is
# chosen only when its extra tones are really there), and the tuning of the scores below.
INFER_QUALITIES: dict[str, float] = {
    "maj": 0.0,
    "min": 0.0,
    "dom7": 0.1,
    "maj7": 0.1,
    "min7": 0.1,
    "sus2": 0.3,
    "sus4": 0.3,
    "7sus4": 0.3,
    "dim": 0.2,
    "hdim7": 0.2,
    "aug": 0.3,
    "maj6": 0.2,
    "min6": 0.2,
}
INFER_OUTSIDE = 0.5  # cost of the weight of tones outside the chord (per unit of the span's weight)
INFER_MISSING = 0.12  # cost of each chord tone that does not sound (at under 5% of the weight)
INFER_BASS_ROOT = 0.35  # reward when the bass (the lowest sounding notes) is the root
INFER_BASS_TONE = 0.1  # ... when it is another chord tone (an inversion)
INFER_DIATONIC = 0.05  # reward for a chord whose tones all lie in the piece's key
INFER_CHANGE = 0.12  # cost of a chord change between two spans (fewer changes: a smoothed path)
INFER_ONSET = 0.5  # extra weight of a note that starts in the span (on top of how long it sounds there)
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)


def _spans(score: Score) -> list[tuple[int, int]]:
    """Half bars (whole bars of an odd number of beats or under four beats)."""
    starts = score.bar_starts()
    spans = []
    for i in range(len(starts) - 1):
        lo, hi = starts[i], starts[i + 1]
        if (hi - lo) % 2 == 0 and (hi - lo) >= 4 * TICKS_PER_BEAT:
            spans += [(lo, lo + (hi - lo) // 2), (lo + (hi - lo) // 2, hi)]
        else:
            spans.append((lo, hi))
    return spans


def _span_profiles(
    notes: list[tuple[int, int, int]], spans: list[tuple[int, int]]
) -> list[tuple[list[float], list[float]] | None]:
    """Per span: (pitch-class weight, bass pitch-class weight), each summing to 1; None for a silent span.

    A note weighs how long it sounds in the span, plus `INFER_ONSET` of that when it starts there (struck
    tones over held ones). The bass is, beat by beat, the lowest sounding pitch, weighted by its overlap.
    """
    notes = sorted(notes, key=lambda n: n[1])
    note_starts = [n[1] for n in notes]
    longest = max((off - on for _, on, off in notes), default=0)
    out: list[tuple[list[float], list[float]] | None] = []
    for lo, hi in spans:
        first = bisect.bisect_left(note_starts, lo - longest)
        sounding = [n for n in notes[first : bisect.bisect_left(note_starts, hi)] if n[2] > lo]
        weight, bass = [0.0] * 12, [0.0] * 12
        for pitch, on, off in sounding:
            overlap = min(off, hi) - max(on, lo)
            if overlap > 0:
                weight[pitch % 12] += overlap * (1.0 + INFER_ONSET * (on >= lo))
        for beat in range(lo, hi, TICKS_PER_BEAT):
            end = min(beat + TICKS_PER_BEAT, hi)
            low = [(p, min(off, end) - max(on, beat)) for p, on, off in sounding if on < end and off > beat]
            if low:
                pitch, overlap = min(low)
                bass[pitch % 12] += overlap
        total, bass_total = sum(weight), sum(bass)
        if total <= 0:
            out.append(None)
            continue
        out.append(([w / total for w in weight], [b / bass_total for b in bass] if bass_total else bass))
    return out


def _candidates(tonic: int, mode: str) -> list[tuple[int, str, tuple[int, ...], float]]:
    """(root, quality, pitch classes, prior) for every root and inferable quality in the key."""
    scale = {(tonic + (3 if mode == "minor" else 0) + i) % 12 for i in MAJOR_SCALE}
    if mode == "minor":
        scale.add((tonic + 11) % 12)  # the leading tone of harmonic minor (V major)
    out = []
    for root in range(12):
        for quality, cost in INFER_QUALITIES.items():
            pcs = tuple(sorted({(root + i) % 12 for i in pitch_classes(quality)}))
            out.append((root, quality, pcs, (INFER_DIATONIC if set(pcs) <= scale else 0.0) - cost))
    return out


def _emission(
    profile: tuple[list[float], list[float]], root: int, pcs: tuple[int, ...], prior: float
) -> float:
    """How well the chord of `root` and pitch classes `pcs` explains a span's `profile` (higher is better):
    the Viterbi pass adds these up along a path, so they are on one scale for every candidate."""
    weight, bass = profile
    inside = sum(weight[pc] for pc in pcs)
    missing = sum(weight[pc] < 0.05 for pc in pcs)
    bass_tone = sum(bass[pc] for pc in pcs) - bass[root]
    return (
        inside
        - INFER_OUTSIDE * (1.0 - inside)
        - INFER_MISSING * missing
        + INFER_BASS_ROOT * bass[root]
        + INFER_BASS_TONE * bass_tone
        + prior
    )


def _best_path(profiles: list, cands: list) -> list[int | None]:
    """Per span, the index of its candidate chord (None for a silent span): a Viterbi pass over each run of
    sounding spans, where staying on a chord costs nothing and a change costs `INFER_CHANGE`."""
    path: list[int | None] = []
    i = 0
    while i < len(profiles):
        if profiles[i] is None:
            path.append(None)
            i += 1
            continue
        j = i
        while j < len(profiles) and profiles[j] is not None:
            j += 1
        score_now = [_emission(profiles[i], r, pcs, pr) for r, _, pcs, pr in cands]
        back: list[list[int]] = []
        for k in range(i + 1, j):
            best_prev = max(range(len(cands)), key=score_now.__getitem__)
            switch = score_now[best_prev] - INFER_CHANGE
            step, nxt = [], []
            for s, (r, _, pcs, pr) in enumerate(cands):
                prev, base = (s, score_now[s]) if score_now[s] >= switch else (best_prev, switch)
                step.append(prev)
                nxt.append(base + _emission(profiles[k], r, pcs, pr))
            back.append(step)
            score_now = nxt
        state = max(range(len(cands)), key=score_now.__getitem__)
        run = [state]
        for step in reversed(back):
            state = step[state]
            run.append(state)
        path += reversed(run)
        i = j
    return path


def infer_chords(
    notes: list[tuple[int, int, int]], score: Score, key: tuple[int, str] | None = None
) -> list[Chord]:
    """Chords guessed from sounding notes (pitch, start, end in ticks), one per half bar (or bar).

    Each span's pitch-class profile (weighted by duration, struck notes more than held ones) is matched
    against every root and quality (`INFER_QUALITIES`: simple triads unless the extra tones sound): tones
    inside the chord count for it, tones outside and missing chord tones against it; the bass note is
    evidence for the root, and chords of the piece's key (`key`, default the score's) are preferred. A
    Viterbi pass over each run of sounding spans then picks the best path with a cost per chord change, so
    a passing tone does not change the chord. Silent spans are 'N'.
    """
    tonic, mode = key if key is not None else (score.tonic, score.mode)
    spans = _spans(score)
    profiles = _span_profiles(notes, spans)
    cands = _candidates(tonic, mode)
    chords: list[Chord] = []
    for (lo, hi), profile, state in zip(spans, profiles, _best_path(profiles, cands), strict=True):
        if state is None:
            chords.append(Chord(lo, hi - lo, 0, NO_CHORD))
            continue
        root, quality, _, _ = cands[state]
        bass_pc = max(range(12), key=profile[1].__getitem__)
        rel = (bass_pc - root) % 12
        bass = rel if profile[1][bass_pc] > 0 and rel in pitch_classes(quality) else 0
        chords.append(Chord(lo, hi - lo, root, quality, bass))
    return merge_chords(chords)


def downbeat_shift(
    notes: list[tuple[int, int, int]], score: Score, key: tuple[int, str] | None = None
) -> int:
    """Ticks (whole beats, under a bar) to delay a one-metre piece by so that the chord changes inferred
    beat by beat fall on bar lines: a MIDI file whose metre is a placeholder does not mark its downbeats.
    0 unless another shift puts clearly more changes on bar lines."""
    if len(score.time_signatures) != 1:
        return 0
    length = score.time_signatures[0].ticks
    tonic, mode = key if key is not None else (score.tonic, score.mode)
    beats = [(t, t + TICKS_PER_BEAT) for t in range(0, score.total_ticks, TICKS_PER_BEAT)]
    cands = _candidates(tonic, mode)
    path = _best_path(_span_profiles(notes, beats), cands)
    changes = [
        beats[k][0]
        for k in range(1, len(path))
        if path[k] is not None and path[k - 1] is not None and path[k] != path[k - 1]
    ]
    if len(changes) < 8:
        return 0
    on_bar = {s: sum((t + s) % length == 0 for t in changes) for s in range(0, length, TICKS_PER_BEAT)}
    best = max(on_bar, key=lambda s: (on_bar[s], -s))
    return best if on_bar[best] > 1.25 * on_bar[0] + 2 else 0
