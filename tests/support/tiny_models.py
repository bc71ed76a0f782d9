"""The tiny-model factory of the tests: tiny real Keras ensembles exported per `serving.contract`."""

from __future__ import annotations

from pathlib import Path


def tiny_members(members: int = 2, seed: int = 0, window: int = 16, hidden: int = 16, train_steps: int = 1):
    """`members` tiny Keras members (window `window`, widths `hidden`), trained `train_steps` batches on
    synthetic music so their outputs are not uniform."""
    import numpy as np

    from music.tokens import Representation
    from tests.support.pieces import synthetic_pieces
    from training.dataset import Examples
    from training.model import MemberConfig, build_member

    vocab = len(Representation().vocab)
    models = []
    ex = Examples(synthetic_pieces(3, seed=seed, max_len=60), window) if train_steps else None
    for i in range(members):
        cfg = MemberConfig(
            vocab,
            window=window,
            embed=hidden,
            conv_filters=hidden,
            lstm_units=max(4, hidden // 2),
            attn_units=max(4, hidden // 4),
            dense=hidden,
            dropout=0.0,
            learning_rate=1e-2,
        )
        model = build_member(cfg, seed=seed * 1000 + i)
        if ex is not None:
            x, y = ex.arrays(window)
            rng = np.random.default_rng(seed + i)
            for _ in range(train_steps):
                idx = rng.choice(len(y), size=min(64, len(y)), replace=False)
                model.train_on_batch({k: v[idx] for k, v in x.items()}, y[idx])
        models.append((model, cfg))
    return models


def make_tiny_models(
    models_dir: Path,
    members: int = 2,
    seed: int = 0,
    version: int | None = None,
    *,
    window: int = 16,
    hidden: int = 16,
    combine: dict | None = None,
    train_steps: int = 1,
    config_base: str | None = None,
) -> int:
    """Build tiny members and export them to `models_dir` as one version (default max + 1); returns it.

    Args:
        models_dir: the TF Serving models folder (created if missing).
        members: number of members.
        seed: weights seed (different seeds answer differently).
        version: force a version number.
        window: the members' window length.
        hidden: the members' widths.
        combine: the rule recorded in the manifests (default: mean, uniform weights).
        train_steps: batches of synthetic music to train on (0: untrained).
        config_base: base path prefix written in models.config.
    Returns:
        The exported version.
    """
    from training.export import export_ensemble

    built = tiny_members(members, seed, window, hidden, train_steps)
    return export_ensemble(
        [m for m, _ in built],
        Path(models_dir),
        combine=combine,
        version=version,
        configs=[{"tiny": True, "seed": seed, "member_config": cfg.to_dict()} for _, cfg in built],
        config_base=config_base,
    )
