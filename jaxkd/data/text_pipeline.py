"""Batches of a language model: truncated back-propagation through time over streams.

Training (Zaremba et al. 2014, "Recurrent neural network regularization", section 4):
the training stream is cut into `batch_size` contiguous streams (`batchify`, the tail
dropped), and step i of every epoch feeds each stream's tokens [i*T, (i+1)*T) with the
next tokens as labels (T = `config.data.bptt`), so a model carrying its hidden state
from step to step reads each stream in order. `reset` (bool[B]) is True on an epoch's
first step: the engine zeroes the model's carried state there (`jaxkd.engine.step`).
`context` holds the T tokens of the text before each window: a teacher, which carries
no state across steps, reads them before the window it gives targets for.
The order is the same every epoch (the text's order is the data; no shuffling).

Evaluation: each split is cut into `eval_batch_size` streams read whole, from a zero
state, in one batch (labels the next tokens, every position counted): the per-token
cross-entropy over them gives the perplexity. Every batch is sharded over the mesh's
'data' axis along its streams.
"""

from __future__ import annotations

from typing import Iterator

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxkd.data.batching import check_batch_sizes
from jaxkd.data.text import EOS, TextSplits
from jaxkd.engine.sharding import DATA_AXIS
from jaxkd.validation import check


def batchify(ids: np.ndarray, streams: int) -> np.ndarray:
    """int32[streams, len(ids) // streams]: `ids` cut into contiguous streams."""
    length = len(ids) // streams
    return np.asarray(ids[:streams * length]).reshape(streams, length)


class TextPipeline:
    """The `jaxkd.data.Pipeline` of `TextSplits` (see the module docstring).

    Attributes:
        steps_per_epoch: (stream length - 1) // bptt windows per epoch.
        num_train: training tokens one epoch reads (batch_size x steps x bptt).
    """

    def __init__(self, splits: TextSplits, *, mesh: Mesh, batch_size: int,
                 eval_batch_size: int, seed: int = 0):
        check_batch_sizes(mesh, batch_size, eval_batch_size)
        self.splits, self.batch_size, self.bptt = splits, int(batch_size), splits.bptt
        self.seed = int(seed)
        self.streams = batchify(splits.train, self.batch_size)
        names = list(splits.class_names)
        self._eos = names.index(EOS) if EOS in names else 0
        self.steps_per_epoch = (self.streams.shape[1] - 1) // self.bptt
        check(self.steps_per_epoch > 0, f"config.batch_size={batch_size} streams of "
              f"{self.streams.shape[1]} tokens leave no window of config.data.bptt="
              f"{self.bptt} (+1) tokens: {len(splits.train)} training tokens")
        self.num_train = self.batch_size * self.steps_per_epoch * self.bptt
        self.eval_batch_size = int(eval_batch_size)
        self.sharding = NamedSharding(mesh, P(DATA_AXIS))
        self.traceable_batches = False

    def _eval_streams(self, split: str) -> np.ndarray:
        streams = batchify(self.splits.split(split), self.eval_batch_size)
        check(streams.shape[1] > 1, f"config.eval_batch_size={self.eval_batch_size} "
              f"streams leave fewer than 2 tokens each of the {split} split")
        return streams

    def num_eval(self, split: str = "test") -> int:
        """Tokens `eval_batches(split)` predicts."""
        streams = self._eval_streams(split)
        return streams.shape[0] * (streams.shape[1] - 1)

    def eval_batch(self, split: str = "test") -> int:
        return self.eval_batch_size

    def eval_steps(self, split: str = "test") -> int:
        return 1

    def _put(self, batch: dict) -> dict:
        return jax.device_put(batch, self.sharding)

    def train_batches(self, epoch: int, start_step: int = 0) -> Iterator[dict]:
        """Yields {'image': int32[B, T] tokens, 'label': int32[B, T] next tokens,
        'reset': bool[B], 'context': int32[B, T] the tokens before} for steps
        start_step..steps_per_epoch-1 of any epoch."""
        check(0 <= start_step <= self.steps_per_epoch,
              f"start_step={start_step} must be in [0, {self.steps_per_epoch}]")
        t = self.bptt
        for i in range(start_step, self.steps_per_epoch):
            window = self.streams[:, i * t:(i + 1) * t + 1]
            yield self._put({"image": window[:, :-1], "label": window[:, 1:],
                             "reset": np.full((self.batch_size,), i == 0),
                             "context": self._context(i)})

    def _context(self, step: int) -> np.ndarray:
        """int32[B, T]: the T tokens of the text before each stream's window `step` (a
        stream's first window: the end of the stream before it; the first stream's:
        `<eos>`), which a teacher reads before the window (`jaxkd.engine.step`)."""
        t, length = self.bptt, self.streams.shape[1]
        flat = np.concatenate([np.full((t,), self._eos, np.int32), self.streams.reshape(-1)])
        starts = np.arange(self.batch_size) * length + step * t      # window starts in `flat`
        return flat[starts[:, None] + np.arange(t)]

    def eval_batches(self, split: str = "test") -> Iterator[dict]:
        """Yields one batch: every stream of `split` whole (`mask` all True)."""
        streams = self._eval_streams(split)
        yield self._put({"image": streams[:, :-1], "label": streams[:, 1:],
                         "mask": np.ones(streams[:, 1:].shape, bool)})
