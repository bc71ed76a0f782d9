"""One ensemble member: Embedding -> Conv1D -> BiLSTM -> attention over the window -> Dense -> softmax.

The conditioning (the header's MODE TS TEMPO DENS ids) is embedded and added to every position of the
window, and concatenated to the pooled features, so every window sees the mood.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
from keras import layers, ops

from serving import contract


@dataclass(frozen=True)
class MemberConfig:
    """The architecture of one member (validated)."""

    vocab_size: int
    window: int = 64
    embed: int = 64
    conv_filters: int = 64
    conv_kernel: int = 3
    conv_stride: int = 1
    lstm_units: int = 64
    attn_units: int = 32
    dense: int = 128
    dropout: float = 0.1
    learning_rate: float = 2e-3

    def __post_init__(self):
        for name in (
            "vocab_size",
            "window",
            "embed",
            "conv_filters",
            "conv_kernel",
            "conv_stride",
            "lstm_units",
            "attn_units",
            "dense",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.window < self.conv_stride:
            raise ValueError("window must be at least conv_stride")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be > 0")

    def to_dict(self) -> dict:
        """Plain dict (for the manifest)."""
        return asdict(self)


@keras.saving.register_keras_serializable(package="lofi")
class AttentionPooling(layers.Layer):
    """Additive attention with a learned query: softmax_t(v . tanh(W x_t + b)) weighted sum of x_t."""

    def __init__(self, units: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        dim = input_shape[-1]
        self.w = self.add_weight(name="w", shape=(dim, self.units), initializer="glorot_uniform")
        self.b = self.add_weight(name="b", shape=(self.units,), initializer="zeros")
        self.query = self.add_weight(name="query", shape=(self.units,), initializer="random_normal")
        super().build(input_shape)

    def call(self, x):
        scores = ops.tensordot(ops.tanh(ops.tensordot(x, self.w, axes=1) + self.b), self.query, axes=1)
        weights = ops.softmax(scores, axis=1)  # [batch, time]
        return ops.sum(x * ops.expand_dims(weights, -1), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="lofi")
class LastStep(layers.Layer):
    """The features of the last time step (the position right before the predicted token)."""

    def call(self, x):
        return x[:, -1, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


def build_member(cfg: MemberConfig, seed: int = 0) -> keras.Model:
    """A compiled member: inputs `tokens` [batch, window] and `cond` [batch, 4] int32 -> probs [batch, vocab]."""
    keras.utils.set_random_seed(seed)
    tokens = keras.Input((cfg.window,), dtype="int32", name=contract.INPUT_TOKENS)
    cond = keras.Input((contract.COND_LEN,), dtype="int32", name=contract.INPUT_COND)
    x = layers.Embedding(cfg.vocab_size, cfg.embed, name="token_embedding")(tokens)
    c = layers.Embedding(cfg.vocab_size, cfg.embed, name="cond_embedding")(cond)
    c = layers.Flatten(name="cond_flat")(c)
    c = layers.Dense(cfg.embed, activation="tanh", name="cond_proj")(c)
    x = layers.Add(name="add_cond")([x, layers.Reshape((1, cfg.embed))(c)])
    x = layers.Conv1D(
        cfg.conv_filters,
        cfg.conv_kernel,
        strides=cfg.conv_stride,
        padding="causal" if cfg.conv_stride == 1 else "same",
        activation="relu",
        name="conv",
    )(x)
    x = layers.Bidirectional(layers.LSTM(cfg.lstm_units, return_sequences=True), name="bilstm")(x)
    pooled = AttentionPooling(cfg.attn_units, name="attention")(x)
    last = LastStep(name="last_step")(x)
    h = layers.Concatenate(name="features")([pooled, last, c])
    h = layers.Dropout(cfg.dropout)(h)
    h = layers.Dense(cfg.dense, activation="relu", name="hidden")(h)
    probs = layers.Dense(cfg.vocab_size, activation="softmax", name=contract.OUTPUT_PROBS, dtype="float32")(h)
    model = keras.Model({contract.INPUT_TOKENS: tokens, contract.INPUT_COND: cond}, probs, name="lofi_member")
    model.compile(
        optimizer=keras.optimizers.Adam(cfg.learning_rate, clipnorm=1.0),
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    return model
