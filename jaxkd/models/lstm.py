"""LSTM language models ([BAN] section 4.2, Table 6; Zaremba et al. 2014).

`lstm_lm`: token embedding, `num_layers` LSTM layers with dropout on every non-recurrent
connection (Zaremba et al. 2014, "Recurrent neural network regularization", eq. 4:
dropout before each layer's input and before the softmax, never on the recurrent
state), and a softmax over the vocabulary whose weights are the embedding's when
`tie_weights` (Press & Wolf 2016, as [BAN]'s LSTM). Its defaults are [BAN]'s large
model: one layer of 1500 units, tied weights, dropout 0.65.

Inputs are int32[B, T] token ids (a float array of ids is cast); logits are float32
[B, T, vocabulary] (`num_classes`), features the last layer's float32 outputs [B, T, H].

Truncated back-propagation through time: in training mode each layer starts from the
state it ended the previous call with, kept in the `batch_stats` collection as `carry`
(the engine's mutable model state, saved in every checkpoint, so a resumed run carries
on exactly) with `stream_batch` rows, one per training stream; no gradient flows into
it. The engine zeroes it where a batch has `reset` (an epoch's first window;
`jaxkd.data.text_pipeline`). Inference starts from a zero state and reads the whole
input, whatever its batch.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxkd.models.common import ModelSpec
from jaxkd.validation import require_int, require_number


class LSTMLanguageModel(nn.Module):
    """See the module docstring."""

    num_classes: int
    embed_dim: int = 1500
    hidden_dim: int = 1500
    num_layers: int = 1
    dropout: float = 0.65
    tie_weights: bool = True
    stream_batch: int = 32
    init_scale: float = 0.05
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tokens, train: bool = False, return_features: bool = False):
        tokens = tokens.astype(jnp.int32)
        init = uniform_init(self.init_scale)
        embed = nn.Embed(self.num_classes, self.embed_dim, embedding_init=init, name="embed")
        drop = nn.Dropout(self.dropout, deterministic=not train)
        x = drop(embed(tokens).astype(self.dtype))
        for layer in range(self.num_layers):
            x = drop(self._layer(layer, x, train, init))
        features = x.astype(jnp.float32)
        if self.tie_weights:
            logits = embed.attend(x.astype(jnp.float32))
            logits = logits + self.param("head_bias", nn.initializers.zeros,
                                         (self.num_classes,))
        else:
            logits = nn.Dense(self.num_classes, kernel_init=init, name="head")(x)
        logits = logits.astype(jnp.float32)
        return (logits, features) if return_features else logits

    def _layer(self, layer: int, x, train: bool, init):
        return carried_lstm(self, layer, x, train, init, hidden_dim=self.hidden_dim,
                            stream_batch=self.stream_batch, dtype=self.dtype)


def uniform_init(scale: float):
    """U(-scale, scale), Zaremba et al.'s (and Kim et al.'s) initialisation."""
    uniform = nn.initializers.uniform(2 * scale)
    return lambda *a: uniform(*a) - scale


def carried_lstm(module: nn.Module, layer: int, x, train: bool, init, *, hidden_dim: int,
                 stream_batch: int, dtype):
    """LSTM layer `layer` of `module` over x [B, T, D] -> [B, T, hidden_dim] (call it from
    `module`'s compact method): its cell `lstm_<layer>` and, in `batch_stats`, the state
    `carry_<layer>` it ended the previous training call with (see the module docstring).
    """
    cell = nn.OptimizedLSTMCell(hidden_dim, kernel_init=init, recurrent_kernel_init=init,
                                dtype=dtype, parent=module, name=f"lstm_{layer}")
    zeros = lambda rows: {k: jnp.zeros((rows, hidden_dim), jnp.float32) for k in ("c", "h")}
    # Declared in either mode, so `init` (inference mode) creates it.
    carry = module.variable("batch_stats", f"carry_{layer}", zeros, stream_batch)
    if not train:
        start = zeros(x.shape[0])
        _, y = nn.RNN(cell, return_carry=True, parent=module)(
            x, initial_carry=(start["c"], start["h"]))
        return y
    if carry.value["c"].shape[0] != x.shape[0]:
        raise ValueError(f"model_overrides.stream_batch={stream_batch} must equal "
                         f"the training batch ({x.shape[0]} streams): set it to "
                         f"config.batch_size")
    start = (carry.value["c"].astype(dtype), carry.value["h"].astype(dtype))
    (c, h), y = nn.RNN(cell, return_carry=True, parent=module)(x, initial_carry=start)
    if not module.is_initializing():
        carry.value = {"c": jax.lax.stop_gradient(c).astype(jnp.float32),
                       "h": jax.lax.stop_gradient(h).astype(jnp.float32)}
    return y


def _validate(kwargs: dict) -> None:
    for name in ("embed_dim", "hidden_dim", "num_layers", "stream_batch"):
        require_int(kwargs[name], f"model_overrides.{name}", low=1)
    require_number(kwargs["dropout"], "model_overrides.dropout", low=0, high=1,
                   high_open=True)
    if kwargs["tie_weights"] and kwargs["embed_dim"] != kwargs["hidden_dim"]:
        raise ValueError(f"model_overrides.tie_weights needs embed_dim == hidden_dim, got "
                         f"{kwargs['embed_dim']} and {kwargs['hidden_dim']}")


MODELS = {
    "lstm_lm": ModelSpec(LSTMLanguageModel, {},
                         dict(embed_dim=1500, hidden_dim=1500, num_layers=1, dropout=0.65,
                              tie_weights=True, stream_batch=32, init_scale=0.05),
                         _validate, 0),
}
