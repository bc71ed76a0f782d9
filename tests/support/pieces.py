"""Synthetic token pieces for training and serving tests."""

from __future__ import annotations

import numpy as np

from music.tokens import Representation
from training.dataset import Piece


def synthetic_pieces(n: int = 12, seed: int = 0, max_len: int = 120) -> list[Piece]:
    """Random valid pieces (grammar walks with a bias towards repetition), for tests and smoke runs."""
    rep = Representation()
    v = rep.vocab
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        header = rep.header(
            str(rng.choice(["major", "minor"])),
            (4, 4),
            float(rng.uniform(60, 100)),
            str(rng.choice(["low", "mid", "high"])),
        )
        state = rep.grammar(header)
        ids = v.ids(header)
        prefer = rng.integers(0, len(v), size=8)
        while len(ids) < max_len:
            allowed = np.flatnonzero(state.allowed())
            eos = v.id("EOS")
            if len(ids) >= max_len - 1 and eos in allowed:
                nxt = eos
            else:
                pool = [a for a in allowed if a in prefer or a == v.id("BAR")]
                choices = pool if pool and rng.random() < 0.7 else list(allowed)
                choices = [c for c in choices if c != eos] or list(allowed)
                nxt = int(rng.choice(choices))
            state.push(nxt)
            ids.append(int(nxt))
            if nxt == eos:
                break
        if ids[-1] != v.id("EOS"):
            # Finish the current note, then close the piece.
            while not state.allowed()[v.id("EOS")]:
                nxt = int(np.flatnonzero(state.allowed())[0])
                state.push(nxt)
                ids.append(nxt)
            ids.append(v.id("EOS"))
        out.append(Piece(f"synthetic/{seed}/{k:04d}.mid", ids))
    return out
