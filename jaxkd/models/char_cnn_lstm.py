"""Character-aware CNN-LSTM language model ([BAN] Table 6's "ConvLSTM"; Kim et al. 2016).

[BAN] section 4.2: "a smaller model from (Kim et al., 2016) combining a convolutional
layers, highway layers, and a 2-layer LSTM", 19M parameters on PTB: Kim et al.'s
LSTM-Char-Large (Table 2 of "Character-Aware Neural Language Models", AAAI 2016):

- each word is spelled as characters between a start-of-word and an end-of-word mark,
  padded to the longest word of the vocabulary (+2); characters embedded in 15 dims;
- convolutions over the characters of widths 1..7 with min(200, 50 w) filters each
  (1 100 in all), tanh, max over positions (Kim et al. eq. 2-3);
- 2 highway layers (ReLU transform, sigmoid transform gate with bias -2; eq. 8);
- 2 LSTM layers of 650 units, dropout 0.5 before the second layer and before the softmax
  (not between the highway output and the first LSTM layer, as Kim et al.), and an
  untied softmax over the word vocabulary; every weight U(-0.05, 0.05).

Inputs are int32[B, T] word ids, as `lstm_lm`'s: the spelling is a constant table built
from the vocabulary (`words`, which the workspace passes from the data: the model's
classes are the vocabulary's words), so the data pipeline, the per-token losses and the
teacher are those of `lstm_lm`. The words `<unk>` and `<eos>` are one character each of
their own. The LSTM layers carry their truncated-BPTT state across training calls as
`lstm_lm`'s do (`jaxkd.models.lstm.carried_lstm`).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from jaxkd.models.common import ModelSpec
from jaxkd.models.lstm import carried_lstm, uniform_init
from jaxkd.validation import require_int, require_number

PAD, START, END = 0, 1, 2          # character ids of the padding and the word marks
SPECIAL_WORDS = ("<unk>", "<eos>")  # spelled as one character of their own


@functools.lru_cache(maxsize=8)
def spelling(words: tuple[str, ...], max_len: int = 0,
             min_len: int = 1) -> tuple[np.ndarray, int]:
    """The characters of every word: (int32[V, L] table, number of character ids).

    Row i is START, the characters of words[i], END, then PAD; L is `max_len` or, when 0,
    the longest word + 2 (at least `min_len`: the widest filter). Character ids follow the
    sorted characters of the vocabulary after PAD, START, END, then one id per special
    word.

    Raises:
        ValueError: naming model_overrides.max_word_len when a word is longer.
    """
    chars = sorted({c for w in words if w not in SPECIAL_WORDS for c in w})
    ids = {c: i + 3 for i, c in enumerate(chars)}
    ids.update({w: len(ids) + 3 + i for i, w in enumerate(SPECIAL_WORDS)})
    spelled = [[ids[w]] if w in SPECIAL_WORDS else [ids[c] for c in w] for w in words]
    longest = max((len(s) for s in spelled), default=0) + 2
    length = max_len or max(longest, min_len)
    if longest > length:
        raise ValueError(f"model_overrides.max_word_len={max_len} is shorter than the "
                         f"longest word of the vocabulary + 2 marks ({longest})")
    table = np.full((len(words), length), PAD, np.int32)
    for i, s in enumerate(spelled):
        table[i, :len(s) + 2] = [START, *s, END]
    return table, len(ids) + 3


class Highway(nn.Module):
    """y = t * relu(W_H x + b_H) + (1 - t) * x, t = sigmoid(W_T x + b_T) (Kim et al. eq. 8;
    b_T starts at -2 so the layer first carries its input)."""

    init: Any
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        dim = x.shape[-1]
        gate = nn.sigmoid(nn.Dense(dim, kernel_init=self.init, dtype=self.dtype,
                                   bias_init=nn.initializers.constant(-2.0), name="gate")(x))
        transform = nn.relu(nn.Dense(dim, kernel_init=self.init, dtype=self.dtype,
                                     bias_init=self.init, name="transform")(x))
        return gate * transform + (1.0 - gate) * x


class CharWords(nn.Module):
    """Spelled words int32[N, L] -> word vectors [N, sum of filters]: embedded characters
    (the padding zero), a convolution per width with tanh and max over positions, then
    the highway layers (Kim et al. Sec. 2.2-2.3)."""

    num_chars: int
    char_dim: int
    filter_widths: tuple[int, ...]
    filters_per_width: int
    max_filters: int
    highway_layers: int
    init: Any
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, chars):
        x = nn.Embed(self.num_chars, self.char_dim, embedding_init=self.init,
                     name="char_embed")(chars)
        x = (x * (chars != PAD)[..., None]).astype(self.dtype)   # zero-padded words
        pooled = []
        for w in self.filter_widths:
            y = nn.Conv(min(self.max_filters, self.filters_per_width * w), (w,),
                        padding="VALID", kernel_init=self.init, bias_init=self.init,
                        dtype=self.dtype, name=f"conv_{w}")(x)
            pooled.append(jnp.max(jnp.tanh(y), axis=-2))
        x = jnp.concatenate(pooled, axis=-1)
        for i in range(self.highway_layers):
            x = Highway(self.init, self.dtype, name=f"highway_{i}")(x)
        return x


class CharCNNLSTM(nn.Module):
    """See the module docstring."""

    num_classes: int
    words: tuple[str, ...] = ()
    char_dim: int = 15
    filter_widths: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)
    filters_per_width: int = 50
    max_filters: int = 200
    highway_layers: int = 2
    hidden_dim: int = 650
    num_layers: int = 2
    dropout: float = 0.5
    max_word_len: int = 0
    stream_batch: int = 20
    init_scale: float = 0.05
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tokens, train: bool = False, return_features: bool = False):
        if len(self.words) != self.num_classes:
            raise ValueError(f"model 'cnn_lstm_lm' spells its {self.num_classes} words: "
                             f"model_overrides.words must hold the vocabulary "
                             f"({len(self.words)} given); the workspace passes it from a "
                             f"text data source")
        table, num_chars = spelling(tuple(self.words), self.max_word_len,
                                    max(self.filter_widths))
        init = uniform_init(self.init_scale)
        chars = jnp.asarray(table)[tokens.astype(jnp.int32)]             # [B, T, L]
        x = CharWords(num_chars, self.char_dim, tuple(self.filter_widths),
                      self.filters_per_width, self.max_filters, self.highway_layers, init,
                      self.dtype, name="spell")(chars)                   # [B, T, 1100]
        drop = nn.Dropout(self.dropout, deterministic=not train)
        for layer in range(self.num_layers):
            if layer:
                x = drop(x)
            x = carried_lstm(self, layer, x, train, init, hidden_dim=self.hidden_dim,
                             stream_batch=self.stream_batch, dtype=self.dtype)
        x = drop(x)
        features = x.astype(jnp.float32)
        logits = nn.Dense(self.num_classes, kernel_init=init, bias_init=init,
                          dtype=self.dtype, name="head")(x).astype(jnp.float32)
        return (logits, features) if return_features else logits


def _validate(kwargs: dict) -> None:
    for name in ("char_dim", "filters_per_width", "max_filters", "hidden_dim", "num_layers",
                 "stream_batch"):
        require_int(kwargs[name], f"model_overrides.{name}", low=1)
    require_int(kwargs["highway_layers"], "model_overrides.highway_layers", low=0)
    require_int(kwargs["max_word_len"], "model_overrides.max_word_len", low=0)
    require_number(kwargs["dropout"], "model_overrides.dropout", low=0, high=1,
                   high_open=True)
    widths = kwargs["filter_widths"]
    if not widths or not all(isinstance(w, int) and w >= 1 for w in widths):
        raise ValueError(f"model_overrides.filter_widths must be widths >= 1, got {widths!r}")
    if kwargs["max_word_len"] and max(widths) > kwargs["max_word_len"]:
        raise ValueError(f"model_overrides.filter_widths: a width of {max(widths)} is wider "
                         f"than model_overrides.max_word_len={kwargs['max_word_len']}")


MODELS = {
    "cnn_lstm_lm": ModelSpec(CharCNNLSTM, {},
                             dict(words=(), char_dim=15, filter_widths=(1, 2, 3, 4, 5, 6, 7),
                                  filters_per_width=50, max_filters=200, highway_layers=2,
                                  hidden_dim=650, num_layers=2, dropout=0.5, max_word_len=0,
                                  stream_batch=20, init_scale=0.05),
                             _validate, 0),
}
