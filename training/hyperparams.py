"""The default hyper-parameters of one member, written once.

`training.model.MemberConfig` (one member's architecture: these fields and a vocabulary size) and
`training.train.Preset` (a training run, which scales the widths per member) both take their defaults from
here, so the two cannot drift apart. This module imports nothing, not Keras: `training.train` reads it at
import time and must stay quick to import (importing `training.model` pulls in TensorFlow, seconds).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Hyperparameters:
    """Architecture and optimiser settings of a member (validated in `MemberConfig`, its subclass, not here).

    Keyword-only, so that the subclass can put its own `vocab_size` first: `MemberConfig(vocab, window=8)`.
    """

    window: int = 64  # tokens the member sees before the one it predicts
    embed: int = 64
    conv_filters: int = 64
    conv_kernel: int = 3
    conv_stride: int = 1
    lstm_units: int = 64
    attn_units: int = 32
    dense: int = 128
    dropout: float = 0.1
    learning_rate: float = 2e-3
    aux_embed: int = 16
    max_interval: int = 24  # widest melodic interval (semitones) the pitch head scores directly


DEFAULTS = Hyperparameters()
