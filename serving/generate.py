"""Autoregressive ensemble generation: every step asks all members at once, combines, masks and samples.

Each track is generated with one pinned version of every member from start to end (a retrain that lands
mid-way is picked up by the next track), after checking over the wire that each pinned version was trained
on the vocabulary this code decodes with. The grammar mask makes every sequence decode; length control
gives exactly `plan.n_bars` bars and ends the last one on a tonic chord. Same seed, parameters and model
versions give the same tokens bit for bit (per-sequence numpy Generators, float64 sampling). A step whose
mask leaves one token (a third or more of a track's steps) takes it without asking the members.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

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
from serving.backend import Backend
from serving.errors import ContractError, GenerationError, ModelNotFound, VocabularyMismatch

log = logging.getLogger(__name__)


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


@dataclass
class Generation:
    """The result of one batched generation."""

    tokens: list[list[int]]  # per sequence: header + body + EOS, decodable by Representation.decode
    versions: dict[str, int]  # member name -> pinned version
    manifests: dict[str, contract.Manifest]
    steps: int = 0
    seconds: float = 0.0
    step_seconds: list[float] = field(default_factory=list)  # time of each ensemble call (all members; steps
    # where every token was forced make none)


class _Ensemble:
    """Pinned member versions, their windows and the combine rule."""

    def __init__(self, versions: dict[str, int], manifests: dict[str, contract.Manifest]):
        self.names = list(versions)
        self.versions = versions
        self.manifests = manifests
        self.windows = {n: manifests[n].window for n in self.names}
        combine = manifests[self.names[0]].combine or {}
        self.method = combine.get("method", "mean")
        weights = combine.get("weights")
        if weights is None:
            weights = [1.0] * len(self.names)
        if len(weights) != len(self.names) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ContractError(f"combine weights {weights} do not fit {len(self.names)} members")
        w = np.asarray(weights, np.float64)
        self.weights = w / w.sum()

    def combine(self, probs: list[np.ndarray]) -> np.ndarray:
        """Weighted mean of probabilities, or weighted geometric mean renormalised (float64)."""
        if self.method == "geometric":
            logp = sum(
                w * np.log(np.maximum(p.astype(np.float64), 1e-30))
                for w, p in zip(self.weights, probs, strict=True)
            )
            out = np.exp(logp - logp.max(axis=1, keepdims=True))
        else:
            out = sum(w * p.astype(np.float64) for w, p in zip(self.weights, probs, strict=True))
        return out / out.sum(axis=1, keepdims=True)


async def pin_ensemble(backend: Backend, rep: Representation, members: list[str] | None = None) -> _Ensemble:
    """Pin the newest version of every member and check each one's manifest (vocabulary, window)."""
    if members is None:
        members = await backend.members()
    versions = await backend.latest_versions(members)
    manifests = await asyncio.gather(*(backend.manifest(n, versions[n]) for n in members))
    expected = contract.vocab_sha256(rep.vocab.tokens)
    for name, m in zip(members, manifests, strict=True):
        if m.vocab_sha256 != expected or len(m.vocab) != len(rep.vocab) or m.representation != rep.version:
            raise VocabularyMismatch(
                f"{name} version {versions[name]} was trained on vocabulary {m.vocab_sha256[:12]} "
                f"({m.representation}, {len(m.vocab)} tokens) but this code decodes with {expected[:12]} "
                f"({rep.version}, {len(rep.vocab)} tokens); retrain or deploy matching code"
            )
        if m.window <= 0:
            raise ContractError(f"{name} version {versions[name]}: window {m.window} is not positive")
    if hasattr(backend, "window"):  # over gRPC: the signature's static window must agree with the manifest
        windows = await asyncio.gather(*(backend.window(n, versions[n]) for n in members))
        for name, m, w in zip(members, manifests, windows, strict=True):
            if w != m.window:
                raise ContractError(
                    f"{name} version {versions[name]}: manifest window {m.window} but "
                    f"the signature takes {w} tokens"
                )
    return _Ensemble(versions, dict(zip(members, manifests, strict=True)))


class _Sequence:
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

    def start_bar(self, mk: _Masks) -> None:
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
            self.copy = tokens
        else:
            self.chords = chord_events(self.rep, tokens)


class _Masks:
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


def _constrain(s: _Sequence, mk: _Masks, opts: SamplingOptions) -> np.ndarray:
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
    s: _Sequence, plan: BarPlan, mk: _Masks, mask: np.ndarray, last_bar: bool
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
        return _only(n, stop) if mask[stop] else None
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


def _sample(p: np.ndarray, mask: np.ndarray, s: _Sequence, mk: _Masks, opts: SamplingOptions) -> int:
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


def _push(s: _Sequence, tok: int, mk: _Masks) -> None:
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


def _windows(seqs: list[_Sequence], width: int) -> np.ndarray:
    out = np.zeros((len(seqs), width), np.int32)  # left-padded with PAD = 0
    for i, s in enumerate(seqs):
        tail = s.window[-width:]
        out[i, width - len(tail) :] = tail
    return out


async def generate_batch(
    backend: Backend,
    plans: list[TrackPlan],
    seeds: list[int],
    *,
    options: SamplingOptions | None = None,
    members: list[str] | None = None,
    rep: Representation | None = None,
    on_bar: Callable[[float], object] | None = None,
) -> Generation:
    """Generate one sequence per (plan, seed), all in one batch per step (best-of-N or concurrent users).

    `on_bar(fraction)` is called each time the slowest sequence starts a new bar (for progress reports).
    """
    if len(plans) != len(seeds) or not plans:
        raise ValueError("give one seed per plan, and at least one plan")
    opts = options or SamplingOptions()
    rep = rep or Representation()
    try:
        return await _generate_pinned(backend, plans, seeds, opts, members, rep, on_bar)
    except ModelNotFound as exc:
        # A pinned version was unloaded mid-track (a server keeping only latest(1)): start the track again on
        # the new versions, so it is still made by one version of each member from start to end.
        log.warning(
            "a pinned model version went away during generation (%s); restarting on the new versions. "
            "Keep two versions loaded (latest { num_versions: 2 }) to avoid this.",
            exc,
        )
        return await _generate_pinned(backend, plans, seeds, opts, members, rep, on_bar)


def _pad_rows(x: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([x, np.repeat(x[:1], n, axis=0)])


def _forced(mask: np.ndarray, s: _Sequence) -> int:
    """The one token `mask` allows, drawing the random number `_sample` would have drawn, so a sequence's
    later tokens are the same whether or not the models were asked here."""
    s.rng.random()
    return int(np.flatnonzero(mask)[0])


async def step(
    backend: Backend, ens: _Ensemble, mk: _Masks, rep: Representation, active: list[_Sequence]
) -> float | None:
    """One step of every sequence in `active`: one call per member for those with a choice, combine, mask,
    sample.

    A sequence whose mask leaves one token (a returning bar being copied, a forced BAR or tonic: 30-46 % of
    the steps of a 2-minute track) takes it without asking the models. Returns the seconds the ensemble call
    took (all members in parallel), or None when no sequence needed it.
    """
    masks = []
    for s in active:  # the models' inputs (window, cond, aux) do not depend on the mask: it can come first
        mask = _constrain(s, mk, s.opts)
        if not mask.any():
            raise GenerationError(f"every token is masked out after {s.g._describe()}")
        masks.append(mask)
    asked = [i for i, m in enumerate(masks) if np.count_nonzero(m) > 1]
    seconds, combined = None, {}
    if asked:
        seqs = [active[i] for i in asked]
        cond = np.stack([s.cond for s in seqs])
        aux = np.asarray([s.aux.row() for s in seqs], np.int32)
        by_width = {w: _windows(seqs, w) for w in set(ens.windows.values())}
        rows = contract.padded_batch(len(seqs))
        if rows > len(seqs):  # copies of the first row: every row is computed alone, so they change nothing
            pad = rows - len(seqs)
            cond, aux = _pad_rows(cond, pad), _pad_rows(aux, pad)
            by_width = {w: _pad_rows(x, pad) for w, x in by_width.items()}
        ts = time.perf_counter()
        probs = await asyncio.gather(
            *(
                backend.predict(name, ens.versions[name], by_width[ens.windows[name]], cond, aux)
                for name in ens.names
            )
        )
        seconds = time.perf_counter() - ts
        for p in probs:
            if p.shape != (rows, len(rep.vocab)):
                raise ContractError(
                    f"a member returned probabilities of shape {p.shape}, expected {(rows, len(rep.vocab))}"
                )
        combined = dict(zip(asked, ens.combine([p[: len(seqs)] for p in probs]), strict=True))
    for i, (s, mask) in enumerate(zip(active, masks, strict=True)):
        tok = _sample(combined[i], mask, s, mk, s.opts) if i in combined else _forced(mask, s)
        _push(s, tok, mk)
        s.steps += 1
    return seconds


async def _generate_pinned(backend, plans, seeds, opts, members, rep, on_bar) -> Generation:
    t0 = time.perf_counter()
    ens = await pin_ensemble(backend, rep, members)
    mk = _Masks(rep)
    seqs = [
        _Sequence(rep, p, seed, row, opts) for row, (p, seed) in enumerate(zip(plans, seeds, strict=True))
    ]
    limit = max(p.n_bars for p in plans) * (opts.max_bar_tokens + 64) + 64
    gen = Generation([], dict(ens.versions), ens.manifests)
    total_bars = sum(p.n_bars for p in plans)
    reported = 0
    while True:
        active = [s for s in seqs if not s.done]
        if not active:
            break
        if gen.steps >= limit:
            raise GenerationError(f"no EOS after {gen.steps} steps")
        if time.perf_counter() - t0 > opts.max_seconds:
            raise GenerationError(
                f"generation stopped after {opts.max_seconds:g} s of wall time ({gen.steps} steps done)"
            )
        seconds = await step(backend, ens, mk, rep, active)
        if seconds is not None:
            gen.step_seconds.append(seconds)
        gen.steps += 1
        if on_bar is not None:
            bars = sum(min(s.g.bars, s.plan.n_bars) for s in seqs)
            if bars > reported:
                reported = bars
                on_bar(bars / total_bars)
    gen.tokens = [s.header + s.body for s in seqs]
    gen.seconds = time.perf_counter() - t0
    return gen


async def generate(
    backend: Backend,
    plan: TrackPlan,
    *,
    n: int = 1,
    seed: int | None = None,
    options: SamplingOptions | None = None,
    members: list[str] | None = None,
    rep: Representation | None = None,
    on_bar: Callable[[float], object] | None = None,
) -> Generation:
    """Generate `n` sequences for one plan (seed defaults to the request's), in one batch."""
    seed = plan.request.seed if seed is None else seed
    return await generate_batch(
        backend, [plan] * n, [seed] * n, options=options, members=members, rep=rep, on_bar=on_bar
    )
