"""Training and batch-prediction speed of each member of a preset on random windows; prints JSON.

Usage: python bench/bench_train.py [preset] (default quick). Used to size the presets' epochs.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    """Measure windows per second for training and prediction."""
    import numpy as np

    from music.tokens import Representation
    from training.model import build_member
    from training.train import get_preset

    preset = get_preset(sys.argv[1] if len(sys.argv) > 1 else "quick")
    vocab = len(Representation().vocab)
    rng = np.random.default_rng(0)
    n = 4096
    out = {"preset": preset.name, "examples": n, "members": []}
    for i in range(preset.members):
        cfg = preset.member_config(i, vocab)
        model = build_member(cfg, seed=i)
        x = {
            "tokens": rng.integers(0, vocab, (n, cfg.window)).astype(np.int32),
            "cond": rng.integers(0, vocab, (n, 4)).astype(np.int32),
            "aux": rng.integers(0, 9, (n, 6)).astype(np.int32),
        }
        y = rng.integers(0, vocab, n)
        model.fit(x, y, batch_size=preset.batch_size, epochs=1, verbose=0)  # trace once
        t = time.perf_counter()
        model.fit(x, y, batch_size=preset.batch_size, epochs=1, verbose=0)
        train_s = time.perf_counter() - t
        t = time.perf_counter()
        model.predict(x, batch_size=2048, verbose=0)
        pred_s = time.perf_counter() - t
        per_epoch = (preset.examples_per_epoch or 0) / (n / train_s)
        out["members"].append(
            {
                "window": cfg.window,
                "params": int(model.count_params()),
                "train_windows_per_s": round(n / train_s),
                "predict_windows_per_s": round(n / pred_s),
                "seconds_per_epoch": round(per_epoch, 1),
            }
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
