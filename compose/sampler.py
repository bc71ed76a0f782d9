"""Sampling one sequence: its state (grammar, history, random generator), the masks that keep it decodable
and on plan (grammar, length control, the form, the ending), and the draw itself.

Same seed, parameters and model probabilities give the same tokens bit for bit (a numpy Generator per
sequence, float64 sampling). A step whose mask leaves one token takes it without the models but still draws
the random number the sampler would have drawn, so later tokens do not depend on which steps asked.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from music.form import BarPlan
from music.request import TrackPlan
from music.tokens import (
    BAR,
    BOS,
    EOS,
    MAX_BAR_TICKS,
    PAD,
    TONIC_CHORDS,
    AuxState,
    GrammarState,
    Representation,
    chord_events,
    with_chord_at_start,
)
from serving import contract


@dataclass(frozen=True)
class SamplingOptions:
    """Knobs of the sampler; `None` temperature/top_p take the plan's (the mood's) values.

    Args:
        temperature: divides log-probabilities (<1 sharper, >1 flatter).
        top_p: nucleus sampling mass (1 = off).
        top_k: keep only the k most likely tokens (0 = off).
        repetition_penalty: a pitch repeated in the last `repetition_window` notes has its probability
            divided by penalty ** (times it occurred).
        max_bar_tokens: after this many tokens in one bar, the next BAR (or the final EOS) is forced.
        ending: open the final bar with a tonic chord at POS_0 (and the first bar too).
        form: follow the plan's form: bars that bring back earlier chords or melody copy them, and a bar
            planned without melody notes gets none.
        max_seconds: wall-time bound on one generation (GenerationError past it); the steps are bounded too.
    """

    temperature: float | None = None
    top_p: float | None = None
    top_k: int = 0
    repetition_penalty: float = 1.0
    repetition_window: int = 8
    max_bar_tokens: int = 96
    ending: bool = True
    form: bool = True
    max_seconds: float = 600.0


class SequenceState:
    """One sequence being generated: grammar state, token history, its own random generator."""

    def __init__(self, rep: Representation, plan: TrackPlan, seed: int, row: int, opts: SamplingOptions):
        self.plan = plan
        self.g: GrammarState = rep.grammar(list(plan.header))
        v = rep.vocab
        self.header = v.ids(list(plan.header))
        self.cond = np.asarray(self.header[1 : 1 + contract.COND_LEN], np.int32)
        self.window = [v.id(BOS)]  # what the models see: BOS then the body
        self.body: list[int] = []
        self.rng = np.random.default_rng([seed, row])
        self.pitches: deque[int] = deque(maxlen=max(opts.repetition_window, 1))
        self.bar_tokens = 0
        self.done = False
        self.temperature = opts.temperature if opts.temperature is not None else plan.temperature
        self.top_p = opts.top_p if opts.top_p is not None else plan.top_p
        self.form: tuple[BarPlan, ...] = plan.form if opts.form else ()
        self.aux = AuxState(rep, self.planned_notes)
        self.rep = rep
        self.bars: list[list[int]] = []  # the body tokens of each bar, after its BAR token
        self.chord_at_start: list[list[int]] = [[]]  # chord tokens sounding as each bar starts
        self.copy: list[int] = []  # tokens still to copy into this bar (a returning bar)
        self.chords: list[tuple[int, list[int]]] = []  # (POS tick, chord tokens) still due in this bar
        self.forced: list[int] = []  # chord tokens still to write at the current position
        self.opts = opts  # sequences sharing a batch may be sampled with different options
        self.steps = 0

    def planned_notes(self, bar: int) -> int:
        """Melody notes the form plans for `bar` (the models' `notes_left` counts down from it)."""
        if bar < len(self.form):
            return self.form[bar].notes
        return 3

    def bar_plan(self, bar: int) -> BarPlan | None:
        """The form's plan of `bar`, if the sequence follows a form."""
        return self.form[bar] if 0 <= bar < len(self.form) else None

    def start_bar(self, mk: TokenMasks) -> None:
        """A BAR was written: remember the bar that ended, and set up what the new bar brings back."""
        if self.bars:
            events = chord_events(self.rep, self.bars[-1])
            if events:
                self.chord_at_start.append(events[-1][1])
            else:
                self.chord_at_start.append(self.chord_at_start[-1])
        self.bars.append([])
        self.copy, self.chords, self.forced = [], [], []
        plan = self.bar_plan(len(self.bars) - 1)
        if plan is None:
            return
        src = plan.melody_from if plan.melody_from is not None else plan.chords_from
        if src is None or src >= len(self.bars) - 1:
            return
        tokens = with_chord_at_start(self.rep, self.bars[src], self.chord_at_start[src])
        if plan.melody_from is not None:
            if plan.copy_share < 1.0:  # a varied return: the bar's opening as written, then the models
                cut = mk.pos_lo + int(plan.copy_share * self.g.bar_len)
                end = mk.pos_lo + MAX_BAR_TICKS
                tokens = tokens[: next((i for i, t in enumerate(tokens) if cut <= t < end), len(tokens))]
            self.copy = tokens
        else:
            self.chords = chord_events(self.rep, tokens)


class TokenMasks:
    """Token ids and masks the sampler needs, computed once per vocabulary."""

    def __init__(self, rep: Representation):
        v = rep.vocab
        n = len(v)
        self.pad, self.bos, self.eos, self.bar = v.id(PAD), v.id(BOS), v.id(EOS), v.id(BAR)
        self.pos0 = v.id("POS_0")
        self.pitch = v.prefix_range("PITCH_")
        self.pitch_min = int(v.tokens[self.pitch[0]][6:])
        self.ts = np.zeros(n, bool)
        a, b = v.prefix_range("TS_")
        self.ts[a:b] = True
        self.bass0 = v.id("BASS_0")
        self.tables = rep.id_tables
        self.chord_mask = np.zeros(n, bool)
        a, b = v.prefix_range("CHORD_")
        self.chord_mask[a:b] = True
        self.pos_lo = v.prefix_range("POS_")[0]
        self.pos_mask = np.zeros(n, bool)
        self.pos_mask[self.pos_lo : self.pos_lo + MAX_BAR_TICKS] = True
        self.vel = v.prefix_range("VEL_")
        a, b = v.prefix_range("DUR_")
        self.dur_ids = np.arange(a, b)
        self.dur_ticks = np.asarray([int(t[4:]) for t in v.tokens[a:b]])
        self.tonic = {}
        for mode, qualities in TONIC_CHORDS.items():
            m = np.zeros(n, bool)
            for q in qualities:
                m[v.id(f"CHORD_0_{q}")] = True
            self.tonic[mode] = m


def _only(n: int, *ids: int) -> np.ndarray:
    m = np.zeros(n, bool)
    m[list(ids)] = True
    return m


def constrain(s: SequenceState, mk: TokenMasks, opts: SamplingOptions) -> np.ndarray:
    """The grammar mask plus length control, the form and the ending, for sequence `s`'s next token."""
    g = s.g
    mask = g.allowed().copy()
    n = mask.size
    if g.phase != "body":
        return mask
    last_bar = g.bars >= s.plan.n_bars
    mask &= ~mk.ts  # keep the plan's time signature, so the bars last the planned seconds
    if last_bar:
        mask[mk.bar] = False
    else:
        mask[mk.eos] = False
    plan = s.bar_plan(g.bar)
    opens_home = plan.tonic if plan is not None else g.bars == 1
    # The tonic opens the track, starts the loop and closes the track: the key is heard.
    if opts.ending and (last_bar or opens_home):
        if g.after == "BAR":
            return _only(n, mk.pos0)
        if g.after == "POS" and g.pos == 0:  # a chord can only follow POS directly: none here yet
            tonic = mask & mk.tonic[s.plan.mode]
            return tonic if tonic.any() else mask
        if g.after == "CHORD" and g.pos == 0:
            return _only(n, mk.bass0)
    if g.after == "PITCH":  # no note may ring past the end of the piece: it ends on a bar boundary
        room = s.plan.n_bars * g.bar_len - (g.bar_start + g.pos)
        too_long = mk.dur_ids[mk.dur_ticks > max(room, int(mk.dur_ticks[0]))]
        mask[too_long] = False
    if plan is not None:
        forced = _follow_form(s, plan, mk, mask, last_bar)
        if forced is not None:
            return forced
    if s.bar_tokens >= opts.max_bar_tokens:
        stop = mk.eos if last_bar else mk.bar
        if mask[stop]:
            return _only(n, stop)
    return mask


def _follow_form(
    s: SequenceState, plan: BarPlan, mk: TokenMasks, mask: np.ndarray, last_bar: bool
) -> np.ndarray | None:
    """Apply the bar's plan to `mask` in place; returns a one-token mask when the form dictates the token."""
    g, n = s.g, mask.size
    stop = mk.eos if last_bar else mk.bar
    if (
        plan.melody_from is not None
    ):  # a returning bar: its tokens as written, skipping any the grammar refuses
        while s.copy:
            if mask[s.copy[0]]:
                return _only(n, s.copy[0])
            tok = s.copy.pop(0)  # e.g. a dynamic level that is already the current one
            if mk.dur_ids[0] <= tok <= mk.dur_ids[-1]:  # a note that would ring past the end: cut it short
                allowed = mk.dur_ids[mask[mk.dur_ids] & (mk.dur_ids <= tok)]
                if allowed.size:
                    return _only(n, int(allowed[-1]))
        if plan.copy_share >= 1.0:
            return _only(n, stop) if mask[stop] else None
        # A varied return: the rest of the bar is the models' own, under the bar's planned notes.
    if s.forced:  # the rest of a returning chord (BASS, VOICING)
        if mask[s.forced[0]]:
            return _only(n, s.forced[0])
        s.forced.clear()
    due = s.chords[0][0] if s.chords else None
    if plan.chords_from is not None:
        if g.after == "POS":
            if due is not None and g.pos == due:
                s.forced = list(s.chords.pop(0)[1])
                if mask[s.forced[0]]:
                    return _only(n, s.forced[0])
                s.forced.clear()
            mask &= ~mk.chord_mask  # the loop's chords only: none of the models' own in a returning bar
        elif due is not None:  # nothing may pass the chord that is due, and the bar may not end before it
            mask[mk.pos_lo + due + 1 : mk.pos_lo + MAX_BAR_TICKS] = False
            mask[mk.bar] = mask[mk.eos] = False
    no_more_notes = plan.notes == 0 or s.aux.notes_here >= plan.notes + 2
    if no_more_notes and g.after != "PITCH":
        mask[mk.pitch[0] : mk.pitch[1]] = False
        mask[mk.vel[0] : mk.vel[1]] = False
        if plan.chords_from is not None:  # a position must carry a chord, so only the due one is left
            keep = np.zeros(n, bool)
            keep[[mk.bar, mk.eos]] = mask[[mk.bar, mk.eos]]
            if due is not None:
                keep[mk.pos_lo + due] = mask[mk.pos_lo + due]
            mask &= keep | ~mk.pos_mask
        else:  # a position must carry a chord: at most one change per half bar, not a chord on every tick
            half = np.zeros(n, bool)
            half[mk.pos_lo + np.arange(0, g.bar_len, max(g.bar_len // 2, 1))] = True
            mask &= half | ~mk.pos_mask
    elif plan.notes > 0 and s.aux.notes_here == 0 and (mask[mk.bar] or mask[mk.eos]):
        # A bar planned with melody does not end empty while a note can still be placed.
        other = mask.copy()
        other[[mk.bar, mk.eos]] = False
        if other.any():
            mask[[mk.bar, mk.eos]] = False
    if not mask.any():  # the plan cannot be met here: fall back to the grammar alone
        mask[:] = s.g.allowed()
    return None


def sample(p: np.ndarray, mask: np.ndarray, s: SequenceState, mk: TokenMasks, opts: SamplingOptions) -> int:
    """Draw one token id from `p` (float64) under `mask` with repetition control, temperature, top-k, top-p."""
    p = np.where(mask, p, 0.0)
    if opts.repetition_penalty != 1.0 and s.pitches:
        a, b = mk.pitch
        if mask[a:b].any():
            p = p.copy()
            for pitch in set(s.pitches):
                idx = a + pitch - mk.pitch_min
                p[idx] /= opts.repetition_penalty ** s.pitches.count(pitch)
    if p.sum() <= 0.0:  # the models give no mass to any valid token: fall back to uniform over them
        p = mask.astype(np.float64)
    ids = np.flatnonzero(p)
    q = p[ids]
    t = max(float(s.temperature), 1e-3)
    if t != 1.0:
        logq = np.log(q) / t
        q = np.exp(logq - logq.max())
    order = np.argsort(-q, kind="stable")
    ids, q = ids[order], q[order]
    if opts.top_k and opts.top_k < q.size:
        ids, q = ids[: opts.top_k], q[: opts.top_k]
    if s.top_p < 1.0:
        cum = np.cumsum(q)
        keep = int(np.searchsorted(cum, s.top_p * cum[-1])) + 1
        ids, q = ids[:keep], q[:keep]
    cum = np.cumsum(q)
    i = int(np.searchsorted(cum, s.rng.random() * cum[-1], side="right"))
    return int(ids[min(i, ids.size - 1)])


def push(s: SequenceState, tok: int, mk: TokenMasks) -> None:
    s.g.push(tok)
    s.aux.push(tok)
    s.body.append(tok)
    s.window.append(tok)
    if s.copy and s.copy[0] == tok:
        s.copy.pop(0)
    if s.forced and s.forced[0] == tok:
        s.forced.pop(0)
    if tok == mk.bar:
        s.bar_tokens = 0
        s.start_bar(mk)
    else:
        s.bar_tokens += 1
        if s.bars:
            s.bars[-1].append(tok)
    a, b = mk.pitch
    if a <= tok < b:
        s.pitches.append(tok - a + mk.pitch_min)
    if tok == mk.eos:
        s.done = True


def windows(seqs: list[SequenceState], width: int) -> np.ndarray:
    out = np.zeros((len(seqs), width), np.int32)  # left-padded with PAD = 0
    for i, s in enumerate(seqs):
        tail = s.window[-width:]
        out[i, width - len(tail) :] = tail
    return out


def pad_rows(x: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([x, np.repeat(x[:1], n, axis=0)])


def forced(mask: np.ndarray, s: SequenceState) -> int:
    """The one token `mask` allows, drawing the random number `sample` would have drawn, so a sequence's
    later tokens are the same whether or not the models were asked here."""
    s.rng.random()
    return int(np.flatnonzero(mask)[0])
