"""One ensemble member: Embedding -> Conv1D -> BiLSTM -> attention over the window -> Dense -> softmax.

The conditioning (the header's MODE TS TEMPO DENS ids) is embedded and added to every position of the
window, and concatenated to the pooled features, so every window sees the mood. The state at the predicted
position (`aux`: previous melody pitch, current chord, position in the bar and phrase, notes the plan still
has for the bar) is embedded beside them. The output head scores a melody pitch three ways at once: as an
absolute pitch, as an interval from the previous melody note, and as a degree above the current chord's
root. Melodies move by small steps on chord tones; a head that can say so directly learns it in minutes,
where one that must relearn "near the previous pitch" for each of 88 pitches separately does not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
from keras import layers, ops

from music.tokens import PITCH_MAX, PITCH_MIN, Representation, aux_sizes
from serving import contract
from training.hyperparams import Hyperparameters


@dataclass(frozen=True)
class MemberConfig(Hyperparameters):
    """The architecture of one member: its hyper-parameters (their fields and defaults are
    `training.hyperparams`'), validated, for a vocabulary of `vocab_size` tokens."""

    vocab_size: int

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
            "aux_embed",
            "max_interval",
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
        """Plain dict (for the manifest; `vocab_size` first, where the manifests have always had it)."""
        return {"vocab_size": self.vocab_size, **asdict(self)}


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


@keras.saving.register_keras_serializable(package="lofi")
class AuxEmbedding(layers.Layer):
    """One embedding table per `aux` feature; the rows of one example are concatenated."""

    def __init__(self, sizes: tuple[int, ...] = (), dim: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.sizes = tuple(int(n) for n in sizes)
        self.dim = dim

    def build(self, input_shape):
        self.tables = [
            self.add_weight(name=f"table_{i}", shape=(n, self.dim), initializer="uniform")
            for i, n in enumerate(self.sizes)
        ]
        super().build(input_shape)

    def call(self, aux):
        aux = ops.cast(aux, "int32")
        rows = [
            ops.take(t, ops.clip(aux[:, i], 0, n - 1), axis=0)
            for i, (t, n) in enumerate(zip(self.tables, self.sizes, strict=True))
        ]
        return ops.concatenate(rows, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.sizes) * self.dim)

    def get_config(self):
        return {**super().get_config(), "sizes": list(self.sizes), "dim": self.dim}


@keras.saving.register_keras_serializable(package="lofi")
class PitchAwareLogits(layers.Layer):
    """Vocabulary logits whose PITCH slice adds an interval-from-previous-pitch and a degree-above-root score.

    `aux[:, 0]` is the previous melody pitch (0 = none, else pitch - PITCH_MIN + 1) and `aux[:, 2]` the
    current chord root (0 = none, else root + 1), as `music.tokens.AuxState` writes them.
    """

    def __init__(
        self, vocab_size: int = 0, pitch_start: int = 0, n_pitches: int = 0, max_interval: int = 24, **kwargs
    ):
        super().__init__(**kwargs)
        self.vocab_size, self.pitch_start, self.n_pitches = vocab_size, pitch_start, n_pitches
        self.max_interval = max_interval

    def build(self, input_shape):
        dim = input_shape[0][-1]
        n_int = 2 * self.max_interval + 1
        self.w = self.add_weight(name="w", shape=(dim, self.vocab_size), initializer="glorot_uniform")
        self.b = self.add_weight(name="b", shape=(self.vocab_size,), initializer="zeros")
        self.w_int = self.add_weight(name="w_interval", shape=(dim, n_int), initializer="glorot_uniform")
        self.b_int = self.add_weight(name="b_interval", shape=(n_int,), initializer="zeros")
        self.w_deg = self.add_weight(name="w_degree", shape=(dim, 12), initializer="glorot_uniform")
        self.b_deg = self.add_weight(name="b_degree", shape=(12,), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):
        h, aux = inputs
        aux = ops.cast(aux, "int32")
        batch = ops.shape(h)[0]
        logits = ops.matmul(h, self.w) + self.b
        zero = ops.zeros((batch, 1), dtype=logits.dtype)
        interval = ops.concatenate([ops.matmul(h, self.w_int) + self.b_int, zero], axis=1)
        degree = ops.concatenate([ops.matmul(h, self.w_deg) + self.b_deg, zero], axis=1)
        pitch = ops.arange(self.n_pitches, dtype="int32")[None, :]  # pitch index i = PITCH_MIN + i
        prev = aux[:, 0:1]
        d = pitch + 1 - prev + self.max_interval
        ok = (prev > 0) & (d >= 0) & (d <= 2 * self.max_interval)
        d = ops.where(ok, d, 2 * self.max_interval + 1)
        root = aux[:, 2:3]
        deg = ops.mod(pitch + PITCH_MIN - (root - 1) + 120, 12)
        deg = ops.where(root > 0, deg, 12)
        lo, hi = self.pitch_start, self.pitch_start + self.n_pitches
        pitch_logits = (
            logits[:, lo:hi]
            + ops.take_along_axis(interval, d, axis=1)
            + ops.take_along_axis(degree, deg, axis=1)
        )
        return ops.concatenate([logits[:, :lo], pitch_logits, logits[:, hi:]], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.vocab_size)

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "pitch_start": self.pitch_start,
            "n_pitches": self.n_pitches,
            "max_interval": self.max_interval,
        }


def build_member(cfg: MemberConfig, seed: int = 0) -> keras.Model:
    """A compiled member: `tokens` [batch, window], `cond` [batch, 4], `aux` [batch, 6] int32 -> probs."""
    keras.utils.set_random_seed(seed)
    rep = Representation()
    if cfg.vocab_size != len(rep.vocab):
        raise ValueError(f"vocab_size {cfg.vocab_size} does not match the representation ({len(rep.vocab)})")
    tokens = keras.Input((cfg.window,), dtype="int32", name=contract.INPUT_TOKENS)
    cond = keras.Input((contract.COND_LEN,), dtype="int32", name=contract.INPUT_COND)
    aux = keras.Input((contract.AUX_LEN,), dtype="int32", name=contract.INPUT_AUX)
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
    state = AuxEmbedding(aux_sizes(rep.vocab), cfg.aux_embed, name="aux_embedding")(aux)
    h = layers.Concatenate(name="features")([pooled, last, c, state])
    h = layers.Dropout(cfg.dropout)(h)
    h = layers.Dense(cfg.dense, activation="relu", name="hidden")(h)
    start, _ = rep.vocab.prefix_range("PITCH_")
    logits = PitchAwareLogits(
        cfg.vocab_size, start, PITCH_MAX - PITCH_MIN + 1, cfg.max_interval, name="pitch_aware_logits"
    )([h, aux])
    probs = layers.Softmax(name=contract.OUTPUT_PROBS, dtype="float32")(logits)
    model = keras.Model(
        {contract.INPUT_TOKENS: tokens, contract.INPUT_COND: cond, contract.INPUT_AUX: aux},
        probs,
        name="lofi_member",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(cfg.learning_rate, clipnorm=1.0),
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    return model
