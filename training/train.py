"""The training loop and its presets: train N different members on the same split of the corpus.

Members differ by seed, window length, widths and a bootstrap sample of the training pieces, so their
errors differ and the ensemble beats each one. Each epoch trains on a fresh random sample of windows
(`examples_per_epoch`), keeps the weights with the best validation loss, and stops after `patience`
epochs without improvement or when the time budget is spent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from training.dataset import Examples, Piece, bootstrap, split_pieces
from training.errors import NoDataError, PresetError
from training.hyperparams import DEFAULTS

log = logging.getLogger(__name__)

Progress = Callable[[dict], None]


@dataclass(frozen=True)
class Preset:
    """A named, validated training configuration (member defaults from `training.hyperparams`)."""

    name: str
    members: int = 3
    windows: tuple[int, ...] = (32, 48, 64)
    width_scales: tuple[float, ...] = (1.0, 0.75, 1.25)
    embed: int = DEFAULTS.embed  # widths before this member's width scale
    conv_filters: int = DEFAULTS.conv_filters
    conv_stride: int = DEFAULTS.conv_stride
    lstm_units: int = DEFAULTS.lstm_units
    attn_units: int = DEFAULTS.attn_units
    dense: int = DEFAULTS.dense
    dropout: float = DEFAULTS.dropout
    learning_rate: float = DEFAULTS.learning_rate
    batch_size: int = 256
    epochs: int = 20
    examples_per_epoch: int | None = None  # None: every training window each epoch
    val_examples: int = 20_000  # validation windows used for early stopping (a fixed sample)
    eval_examples: int | None = None  # test windows used for the metrics (None: all)
    patience: int = 3  # epochs without improvement before a member stops (it has converged)
    # the learning rate is multiplied by this after an epoch without improvement
    plateau_lr_factor: float = 0.5
    bootstrap: bool = True
    time_budget_s: float | None = None  # for all members together

    def __post_init__(self):
        if self.members < 1:
            raise PresetError("members must be >= 1")
        if not self.windows or min(self.windows) < 2:
            raise PresetError("windows must be >= 2")
        if not self.width_scales or min(self.width_scales) <= 0:
            raise PresetError("width_scales must be > 0")
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1 or self.val_examples < 1:
            raise PresetError("epochs, batch_size, patience and val_examples must be >= 1")
        if self.examples_per_epoch is not None and self.examples_per_epoch < 1:
            raise PresetError("examples_per_epoch must be >= 1")
        if not 0 < self.plateau_lr_factor <= 1:
            raise PresetError("plateau_lr_factor must be in (0, 1]")

    def member_config(self, index: int, vocab_size: int):
        """The architecture of member `index` (window and widths vary by member)."""
        from training.model import MemberConfig

        s = self.width_scales[index % len(self.width_scales)]
        return MemberConfig(
            vocab_size=vocab_size,
            window=self.windows[index % len(self.windows)],
            embed=max(4, int(self.embed * s)),
            conv_filters=max(4, int(self.conv_filters * s)),
            conv_stride=self.conv_stride,
            lstm_units=max(4, int(self.lstm_units * s)),
            attn_units=self.attn_units,
            dense=max(8, int(self.dense * s)),
            dropout=self.dropout,
            learning_rate=self.learning_rate,
        )

    def to_dict(self) -> dict:
        """Plain dict (for the manifest)."""
        return asdict(self)


PRESETS: dict[str, Preset] = {
    # Tests: a few hundred parameters' worth, seconds.
    "tiny": Preset(
        "tiny",
        members=2,
        windows=(8, 12),
        embed=8,
        conv_filters=8,
        lstm_units=8,
        attn_units=4,
        dense=16,
        batch_size=64,
        epochs=1,
        examples_per_epoch=512,
        val_examples=256,
        eval_examples=512,
        patience=1,
    ),
    # The main job's first start: all members in <= 5 minutes on 2 CPU cores.
    "quick": Preset(
        "quick",
        members=3,
        windows=(32, 48, 40),
        embed=48,
        conv_filters=48,
        lstm_units=48,
        attn_units=32,
        dense=128,
        learning_rate=3e-3,
        batch_size=256,
        epochs=8,
        examples_per_epoch=40_000,
        val_examples=10_000,
        eval_examples=60_000,
        patience=2,
        time_budget_s=240.0,
    ),
    # The real model: the quick architecture (sized so a 2-minute track generates in about 2 s) trained about
    # 10x longer, within 40 minutes on 2 CPU cores. Quick members are still improving when their 4 minutes run
    # out, so more training, not more width, is what helps; wider members (96-unit LSTMs, window 64) were
    # estimated at 2.5-3.6 hours of training and would generate about 2x slower.
    "full": Preset(
        "full",
        members=3,
        windows=(32, 48, 40),
        embed=64,
        conv_filters=64,
        lstm_units=64,
        attn_units=32,
        dense=128,
        learning_rate=2e-3,
        batch_size=256,
        epochs=30,
        examples_per_epoch=160_000,
        val_examples=20_000,
        eval_examples=None,
        patience=3,
        time_budget_s=2400.0,
    ),
}


def get_preset(name: str, **overrides) -> Preset:
    """The preset `name`, with `overrides` (None values ignored); PresetError if unknown."""
    if name not in PRESETS:
        raise PresetError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    return replace(PRESETS[name], **changes) if changes else PRESETS[name]


@dataclass
class TrainedMember:
    """One trained member with its architecture and training history."""

    model: object  # keras.Model
    config: object  # MemberConfig
    seed: int
    history: list[dict] = field(default_factory=list)
    best_val_loss: float = float("inf")
    seconds: float = 0.0
    stopped: str = "epochs"  # why training ended: "epochs" (the limit), "converged" (patience), "time budget"


@dataclass
class TrainedEnsemble:
    """The members of one training run and the split they were trained on."""

    members: list[TrainedMember]
    preset: Preset
    seed: int
    splits: dict[str, list[Piece]]
    seconds: float


def sample_index(n: int, k: int | None, rng: np.random.Generator) -> np.ndarray:
    """`k` distinct example indices out of `n` (all, shuffled, when k is None or >= n)."""
    if k is None or k >= n:
        return rng.permutation(n)
    return rng.choice(n, size=k, replace=False)


def _log_progress(info: dict) -> None:
    if info.get("event") == "epoch":
        log.info(
            "member %d epoch %d/%d: loss %.4f val_loss %.4f acc %.3f (%.1fs)%s",
            info["member"],
            info["epoch"],
            info["epochs"],
            info["loss"],
            info["val_loss"],
            info["val_acc"],
            info["seconds"],
            " *" if info["best"] else "",
        )


def train_member(
    index: int,
    train: Sequence[Piece],
    val_ex: Examples,
    preset: Preset,
    vocab_size: int,
    seed: int,
    epochs: int,
    progress: Progress | None = None,
    deadline: float | None = None,
) -> TrainedMember:
    """Train one member with early stopping on `val_ex`; returns it with its best weights restored."""
    from training.model import build_member

    t0 = time.perf_counter()
    cfg = preset.member_config(index, vocab_size)
    member_seed = seed * 1000 + index
    ex, vx, vy = _member_windows(train, val_ex, preset, cfg.window, member_seed, seed)
    rng = np.random.default_rng(member_seed)
    model = build_member(cfg, seed=member_seed)
    tm = TrainedMember(model, cfg, member_seed)
    best_weights, bad = None, 0
    for epoch in range(1, epochs + 1):
        te = time.perf_counter()
        loss, val_loss, val_acc = _fit_epoch(model, ex, cfg.window, preset, rng, vx, vy)
        best = val_loss < tm.best_val_loss - 1e-4
        if best:
            tm.best_val_loss, best_weights, bad = val_loss, model.get_weights(), 0
        else:
            bad += 1
        info = {
            "event": "epoch",
            "member": index,
            "epoch": epoch,
            "epochs": epochs,
            "loss": loss,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "seconds": time.perf_counter() - te,
            "best": best,
        }
        tm.history.append(info)
        _log_progress(info)
        if progress:
            progress(info)
        if bad >= preset.patience:
            tm.stopped = "converged"
            break
        # Stop when the next epoch (as long as this one) would overrun this member's share of the budget.
        if deadline is not None and time.perf_counter() + info["seconds"] > deadline:
            log.info("member %d: time budget spent after epoch %d", index, epoch)
            tm.stopped = "time budget"
            break
        if not best and preset.plateau_lr_factor < 1 and epoch < epochs:
            # a plateau: smaller steps often find the lower loss the last ones stepped over
            optimizer = model.optimizer
            optimizer.learning_rate = float(optimizer.learning_rate) * preset.plateau_lr_factor
            log.info("member %d: learning rate lowered to %.2g", index, float(optimizer.learning_rate))
    if best_weights is not None:
        model.set_weights(best_weights)
    tm.seconds = time.perf_counter() - t0
    return tm


def _member_windows(
    train: Sequence[Piece], val_ex: Examples, preset: Preset, window: int, member_seed: int, seed: int
) -> tuple[Examples, dict[str, np.ndarray], np.ndarray]:
    """A member's training windows (over its bootstrap sample of `train`) and its validation arrays.

    The validation sample is drawn with the run's `seed`, not the member's, so every member stops early on
    the same windows (cut to its own length)."""
    pieces = bootstrap(train, member_seed) if preset.bootstrap and len(train) > 1 else list(train)
    ex = Examples(pieces, window)
    if len(ex) == 0:
        raise NoDataError("no training windows")
    vx, vy = val_ex.arrays(
        window, np.sort(sample_index(len(val_ex), preset.val_examples, np.random.default_rng(seed)))
    )
    return ex, vx, vy


def _fit_epoch(
    model,
    ex: Examples,
    window: int,
    preset: Preset,
    rng: np.random.Generator,
    vx: dict[str, np.ndarray],
    vy: np.ndarray,
) -> tuple[float, float, float]:
    """Fit one epoch on a fresh sample of `ex`'s windows: (training loss, validation loss and accuracy)."""
    x, y = ex.arrays(window, sample_index(len(ex), preset.examples_per_epoch, rng))
    h = model.fit(x, y, batch_size=preset.batch_size, epochs=1, verbose=0, shuffle=True)
    loss = float(h.history["loss"][-1])
    val_loss, val_acc = (float(v) for v in model.evaluate(vx, vy, batch_size=1024, verbose=0))
    return loss, val_loss, val_acc


def train_ensemble(
    pieces: Sequence[Piece],
    preset: Preset | str = "quick",
    members: int | None = None,
    seed: int = 0,
    epochs: int | None = None,
    progress: Progress | None = None,
    extra_train: Sequence[Piece] = (),
    split_seed: int | None = None,
) -> TrainedEnsemble:
    """Split `pieces` by name, train `members` members on the training split; returns them and the split.

    Args:
        pieces: the corpus (split 80/10/10 by the hash of each name and `split_seed`).
        preset: a `Preset` or its name.
        members: number of members (default: the preset's).
        seed: the members' seeds derive from it.
        epochs: maximum epochs (default: the preset's).
        progress: called with a dict after every epoch.
        extra_train: pieces that only ever go into the training split (e.g. liked tracks).
        split_seed: seed of the split (default `seed`).
    Returns:
        The trained members and the split.
    """
    from music.tokens import Representation

    if isinstance(preset, str):
        preset = get_preset(preset)
    members = members or preset.members
    epochs = epochs or preset.epochs
    vocab_size = len(Representation().vocab)
    splits = split_pieces(pieces, seed if split_seed is None else split_seed)
    splits["train"] = splits["train"] + list(extra_train)
    if not splits["train"] or not splits["val"]:
        raise NoDataError(
            f"need pieces in train and validation splits, got {len(splits['train'])} train, "
            f"{len(splits['val'])} validation (of {len(pieces)} pieces)"
        )
    t0 = time.perf_counter()
    val_ex = Examples(splits["val"], max(preset.windows))
    out = []
    for i in range(members):
        deadline = None
        if preset.time_budget_s is not None:
            # Share what is left of the budget equally among the members still to train.
            left = preset.time_budget_s - (time.perf_counter() - t0)
            deadline = time.perf_counter() + left / (members - i)
        if progress:
            progress({"event": "member_start", "member": i, "members": members})
        out.append(
            train_member(i, splits["train"], val_ex, preset, vocab_size, seed, epochs, progress, deadline)
        )
    return TrainedEnsemble(out, preset, seed, splits, time.perf_counter() - t0)
