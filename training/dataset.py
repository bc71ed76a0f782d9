"""Training examples from encoded pieces: the split by piece, and next-token windows.

A piece's ids are `BOS MODE TS TEMPO DENS body... EOS`. The model sees the header's last four ids as the
conditioning `cond`, the state at the predicted position as `aux` (`music.tokens.AuxState`), and the
sequence `[BOS] + body` as text: for every position t >= 1 the input is the `window` ids before t
(left-padded with PAD = 0) and the target is id t. No window spans two pieces. Melody-less intros are cut
to one bar first (`music.tokens.trim_intro`): learned from pop songs, they would open every track.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from music.tokens import AUX_FEATURES, HEADER_LEN, Representation, aux_rows, trim_intro

PAD_ID = 0
SPLITS = ("train", "val", "test")


@dataclass
class Piece:
    """The minimum the trainer needs of a piece: a stable name and its full token ids."""

    name: str
    ids: list[int]


def as_pieces(items: Sequence) -> list[Piece]:
    """Pieces from `EncodedPiece`s, `Piece`s or bare id lists (named by position)."""
    out = []
    for i, it in enumerate(items):
        if hasattr(it, "ids") and hasattr(it, "name"):
            out.append(Piece(str(it.name), list(it.ids)))
        else:
            out.append(Piece(f"extra-{i}-{_digest(list(it))}", list(it)))
    return [p for p in out if len(p.ids) > HEADER_LEN + 1]


def _digest(ids: list[int]) -> str:
    return hashlib.sha256(np.asarray(ids, dtype=np.int32).tobytes()).hexdigest()[:12]


def split_of(name: str, seed: int = 0, fractions: tuple[float, float] = (0.8, 0.1)) -> str:
    """'train', 'val' or 'test' for a piece, from the hash of its name and `seed` (stable across runs)."""
    h = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    if u < fractions[0]:
        return "train"
    return "val" if u < fractions[0] + fractions[1] else "test"


def split_pieces(pieces: Sequence[Piece], seed: int = 0) -> dict[str, list[Piece]]:
    """Pieces by split (80/10/10 by name hash); a name seen twice keeps its first piece only."""
    out: dict[str, list[Piece]] = {s: [] for s in SPLITS}
    seen: set[str] = set()
    for p in pieces:
        if p.name in seen:
            continue
        seen.add(p.name)
        out[split_of(p.name, seed)].append(p)
    return out


def cond_and_sequence(ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(cond ids MODE TS TEMPO DENS, sequence [BOS] + body) of one piece."""
    ids = np.asarray(ids, dtype=np.int32)
    return ids[1:HEADER_LEN].copy(), np.concatenate([ids[:1], ids[HEADER_LEN:]])


class Examples:
    """All next-token examples of some pieces, stored once; windows are gathered on demand.

    The sequences are concatenated with `max_window` PADs before each one, so the window before any
    position is a plain slice and never reaches into the previous piece.
    """

    def __init__(self, pieces: Sequence[Piece], max_window: int, trim: bool = True):
        self.max_window = max_window
        rep = Representation()
        chunks, conds, targets_at, piece_of, aux = [], [], [], [], []
        offset = 0
        for k, p in enumerate(pieces):
            cond, seq = cond_and_sequence(trim_intro(rep, p.ids) if trim else p.ids)
            chunks.append(np.zeros(max_window, np.int32))
            chunks.append(seq)
            aux.append(np.zeros((max_window, len(AUX_FEATURES)), np.int32))
            aux.append(aux_rows(rep, seq))
            start = offset + max_window
            targets_at.append(np.arange(start + 1, start + len(seq), dtype=np.int64))
            piece_of.append(np.full(len(seq) - 1, k, dtype=np.int32))
            conds.append(cond)
            offset = start + len(seq)
        self.flat = np.concatenate(chunks) if chunks else np.zeros(0, np.int32)
        self.positions = np.concatenate(targets_at) if targets_at else np.zeros(0, np.int64)
        self.piece_of = np.concatenate(piece_of) if piece_of else np.zeros(0, np.int32)
        self.conds = np.stack(conds) if conds else np.zeros((0, 4), np.int32)
        self.aux = np.concatenate(aux) if aux else np.zeros((0, len(AUX_FEATURES)), np.int32)

    def __len__(self) -> int:
        return len(self.positions)

    def arrays(
        self, window: int, index: np.ndarray | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(inputs {tokens [n, window], cond [n, 4], aux [n, 6]}, target [n]) int32 for the examples `index`
        (default all)."""
        if window > self.max_window:
            raise ValueError(f"window {window} is longer than max_window {self.max_window}")
        pos = self.positions if index is None else self.positions[index]
        pieces = self.piece_of if index is None else self.piece_of[index]
        tokens = self.flat[pos[:, None] + np.arange(-window, 0)[None, :]]
        inputs = {"tokens": tokens.astype(np.int32), "cond": self.conds[pieces], "aux": self.aux[pos]}
        return inputs, self.flat[pos].astype(np.int32)

    def targets(self, index: np.ndarray | None = None) -> np.ndarray:
        """The target ids of the examples `index` (default all)."""
        pos = self.positions if index is None else self.positions[index]
        return self.flat[pos].astype(np.int32)

    def kinds(self, index: np.ndarray | None = None) -> np.ndarray:
        """The token class of each target (see `music.tokens.token_class`)."""
        from music.tokens import token_classes

        return token_classes(Representation())[self.targets(index)]

    def sequences(self) -> list[np.ndarray]:
        """The `[BOS] + body` sequence of every piece (for the n-gram baselines)."""
        ends = np.flatnonzero(np.diff(self.piece_of, append=-1) != 0) if len(self) else []
        out, start = [], 0
        for e in ends:
            pos = self.positions[start : e + 1]
            out.append(self.flat[pos[0] - 1 : pos[-1] + 1])
            start = e + 1
        return out


def bootstrap(pieces: Sequence[Piece], seed: int) -> list[Piece]:
    """A bootstrap sample (with replacement, same size) of `pieces`."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(pieces), size=len(pieces))
    return [pieces[i] for i in sorted(idx)]
