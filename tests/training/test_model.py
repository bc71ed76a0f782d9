"""The member architecture, presets, the split and the training examples."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict

import keras
import numpy as np
import pytest

from music.tokens import HEADER_LEN, Representation
from tests.support.pieces import synthetic_pieces
from training.dataset import Examples, Piece, split_of, split_pieces
from training.errors import PresetError
from training.hyperparams import DEFAULTS
from training.model import AttentionPooling, MemberConfig, build_member
from training.train import PRESETS, Preset, get_preset, train_ensemble

VOCAB = len(Representation().vocab)


def test_member_outputs_a_distribution_over_the_vocabulary():
    model = build_member(
        MemberConfig(VOCAB, window=8, embed=8, conv_filters=8, lstm_units=4, attn_units=4, dense=8)
    )
    probs = model.predict(
        {
            "tokens": np.zeros((3, 8), np.int32),
            "cond": np.ones((3, 4), np.int32),
            "aux": np.ones((3, 6), np.int32),
        },
        verbose=0,
    )
    assert probs.shape == (3, VOCAB)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_member_config_is_validated():
    with pytest.raises(ValueError):
        MemberConfig(VOCAB, window=0)
    with pytest.raises(ValueError):
        MemberConfig(VOCAB, dropout=1.5)


def test_attention_layer_serialises():
    layer = AttentionPooling(units=5, name="att")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, AttentionPooling) and restored.units == 5


def test_presets_are_named_and_validated():
    assert set(PRESETS) >= {"tiny", "quick", "full"}
    assert get_preset("quick", epochs=2).epochs == 2
    with pytest.raises(PresetError):
        get_preset("enormous")
    with pytest.raises(PresetError):
        get_preset("tiny", members=0)


def test_a_preset_left_at_its_defaults_builds_the_default_member():
    preset = Preset("plain", windows=(MemberConfig(VOCAB).window,), width_scales=(1.0,))
    assert preset.member_config(0, VOCAB) == MemberConfig(VOCAB)


def test_a_member_config_is_the_default_hyperparameters_for_a_vocabulary():
    cfg = MemberConfig(VOCAB)
    assert {k: v for k, v in cfg.to_dict().items() if k != "vocab_size"} == asdict(DEFAULTS)
    assert list(cfg.to_dict())[:2] == ["vocab_size", "window"]  # the manifests' key order


def test_presets_are_read_without_importing_tensorflow():
    code = "import sys, training.train; print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_split_is_reproducible_and_disjoint():
    pieces = [Piece(f"set/{i:04d}.mid", [1, 4, 6, 23, 30, 3, 2]) for i in range(300)]
    a, b = split_pieces(pieces, seed=3), split_pieces(list(reversed(pieces)), seed=3)
    names = {k: {p.name for p in v} for k, v in a.items()}
    assert names == {k: {p.name for p in v} for k, v in b.items()}
    assert not (
        names["train"] & names["val"] or names["train"] & names["test"] or names["val"] & names["test"]
    )
    assert sum(map(len, names.values())) == 300
    assert 0.65 < len(names["train"]) / 300 < 0.92 and names["test"]
    assert split_of("x.mid", 1) == split_of("x.mid", 1)
    assert split_pieces(pieces, seed=4)["test"] != a["test"]


def test_windows_never_span_two_pieces():
    p1, p2 = synthetic_pieces(2, seed=1, max_len=30)
    ex = Examples([p1, p2], max_window=8, trim=False)
    assert len(ex) == (len(p1.ids) - HEADER_LEN) + (len(p2.ids) - HEADER_LEN)
    inputs, target = ex.arrays(8)
    tokens, cond = inputs["tokens"], inputs["cond"]
    first_of_p2 = len(p1.ids) - HEADER_LEN
    assert tokens[first_of_p2].tolist() == [0] * 7 + [1]  # PAD... BOS: nothing of piece 1
    assert target[first_of_p2] == p2.ids[HEADER_LEN]
    assert cond[first_of_p2].tolist() == p2.ids[1:HEADER_LEN]
    assert cond[0].tolist() == p1.ids[1:HEADER_LEN]
    assert target[first_of_p2 - 1] == p1.ids[-1]  # EOS is predicted


def test_tiny_ensemble_trains_with_progress_lines():
    events = []
    ens = train_ensemble(synthetic_pieces(24, seed=0, max_len=50), "tiny", seed=0, progress=events.append)
    assert len(ens.members) == 2
    assert {m.config.window for m in ens.members} == {8, 12}
    epochs = [e for e in events if e["event"] == "epoch"]
    assert epochs and all({"loss", "val_loss", "seconds"} <= set(e) for e in epochs)
    assert all(np.isfinite(m.best_val_loss) for m in ens.members)


def test_a_member_trains_until_its_validation_loss_stops_improving_lowering_the_rate_on_each_plateau(
    monkeypatch,
):
    from training import train as train_mod

    val_losses = iter([3.0, 2.0, 2.5, 1.9, 2.1, 2.0, 2.2, 1.0])  # the last is never reached: patience 3
    rates = []

    def scripted_epoch(model, *args):
        rates.append(float(model.optimizer.learning_rate))
        return 1.0, next(val_losses), 0.5

    monkeypatch.setattr(train_mod, "_fit_epoch", scripted_epoch)
    preset = get_preset("tiny", patience=3, epochs=50, learning_rate=0.01)
    member = train_ensemble(synthetic_pieces(24, seed=0, max_len=50), preset, members=1, seed=0).members[0]
    assert member.stopped == "converged" and len(member.history) == 7 and member.best_val_loss == 1.9
    # halved after each epoch that did not improve (3, 5, 6), kept after those that did
    assert rates == pytest.approx([0.01, 0.01, 0.01, 0.005, 0.005, 0.0025, 0.00125])


def test_a_member_that_keeps_improving_stops_at_the_epoch_limit_and_says_so():
    preset = get_preset("tiny", epochs=1)
    member = train_ensemble(synthetic_pieces(24, seed=0, max_len=50), preset, members=1, seed=0).members[0]
    assert member.stopped == "epochs" and len(member.history) == 1
