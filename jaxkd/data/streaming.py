"""Streaming batches for data sets read example by example (ImageNet through TFDS).

Each process decodes only its own part of every global batch (rows
`[process_index * B / P, (process_index + 1) * B / P)`), in a thread pool on the host,
and the global array is assembled with `jax.make_array_from_process_local_data`. A couple
of batches are prepared ahead in a background thread. Host work per example:
  * training, `augment.kind='imagenet'`: random-resized crop to `image_size` and a random
    flip (`host_ops.random_resized_crop`) with a numpy generator seeded by
    (seed, epoch, example index), so the result does not depend on thread timing;
  * otherwise, and for evaluation: the central crop (`host_ops.center_crop`); with
    `augment.kind='cifar'` the jitted device step then pads, crops and flips.
The device step normalises (and applies the CIFAR augmentation if asked) inside jit, so
images cross the host-device link as uint8. Epoch order, step keys and evaluation batches
follow the rules both pipelines share (`jaxkd.data.batching`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import os
from typing import Any, Iterator

import jax
import numpy as np
from jax.sharding import Mesh

from jaxkd.data import augment as augment_lib
from jaxkd.data import batching, host_ops
from jaxkd.data.batching import epoch_permutation, eval_plan, step_key
from jaxkd.data.dataset import Splits, augment_field, check

_AUGMENT_STREAM = 4
PREFETCH = 2


class StreamingPipeline(batching.PipelineBase):
    """Host decoding + device normalisation for data sets that do not fit in memory."""

    def __init__(self, splits: Splits, *, mesh: Mesh, batch_size: int, eval_batch_size: int,
                 augment_cfg: Any, seed: int, num_threads: int | None = None):
        super().__init__(splits, mesh=mesh, batch_size=batch_size,
                         eval_batch_size=eval_batch_size, seed=seed)
        self.size = splits.image_size
        self._process, self._processes = jax.process_index(), jax.process_count()
        self._host_crop = augment_field(augment_cfg, "kind") == "imagenet"
        self._flip = bool(augment_field(augment_cfg, "flip"))
        device_augment = augment_lib.make_augment(augment_cfg) if not self._host_crop \
            else augment_lib.make_augment({"kind": "none"})
        self._train_fn, self._eval_fn = self._jit_batch_fns(
            batching.to_train_batch, batching.to_eval_batch, device_augment)
        self._pool = concurrent.futures.ThreadPoolExecutor(num_threads or os.cpu_count() or 1)

    def _local(self, rows: np.ndarray) -> np.ndarray:
        """This process's part of a global batch of rows."""
        per = len(rows) // self._processes
        return rows[self._process * per:(self._process + 1) * per]

    def _decode(self, split, indices, train_epoch: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Reads and crops `indices` of `split` into uint8[b, S, S, 3] and int32[b]."""
        examples = split.read(indices)

        def one(item):
            (image, _), index = item
            image = host_ops.to_rgb(image)
            if train_epoch is not None and self._host_crop:
                rng = np.random.default_rng([self.seed, _AUGMENT_STREAM, train_epoch, index])
                return host_ops.random_resized_crop(image, self.size, rng, self._flip)
            return host_ops.center_crop(image, self.size)

        images = np.stack(list(self._pool.map(one, zip(examples, indices))))
        labels = np.array([label for _, label in examples], np.int32)
        num_classes = self.splits.num_classes
        check(labels.min() >= 0 and labels.max() < num_classes,
              f"{getattr(split, 'name', 'stream')}: labels out of range: found "
              f"[{labels.min()}, {labels.max()}] but there are {num_classes} classes")
        return images, labels

    def _global(self, local: np.ndarray) -> jax.Array:
        """The global batch whose rows of this process are `local`, sharded `P('data')`."""
        shape = (len(local) * self._processes,) + local.shape[1:]
        return jax.make_array_from_process_local_data(self.sharding, local, shape)

    def _train_host(self, order: np.ndarray, epoch: int, step: int):
        """Decodes training step `step` of `order` into global (images, labels)."""
        rows = self._step_rows(order, step)
        images, labels = self._decode(self.splits.train, self._local(rows), epoch)
        return self._global(images), self._global(labels)

    def train_batches(self, epoch: int, start_step: int = 0) -> Iterator[dict]:
        """Yields {'image': float32[B,S,S,3], 'label': int32[B]} for steps start_step..."""
        steps = self._train_steps(start_step)
        order = epoch_permutation(self.seed, epoch, self.num_train)
        host = _prefetch((functools.partial(self._train_host, order, epoch, s) for s in steps))
        for step, (images, labels) in zip(steps, host):
            yield self._train_fn(images, labels, step_key(self.seed, epoch, step))

    def _eval_host(self, split, indices, mask):
        """Decodes one evaluation batch into global (images, labels, mask)."""
        images, labels = self._decode(split, self._local(indices), None)
        return self._global(images), self._global(labels), self._global(self._local(mask))

    def eval_batches(self, split: str = "test") -> Iterator[dict]:
        """Yields {'image', 'label', 'mask'} covering every example of `split` once."""
        data = self.splits.split(split)
        plan = eval_plan(len(data), self.eval_batch(split))
        for images, labels, mask in _prefetch(
                functools.partial(self._eval_host, data, i, m) for i, m in plan):
            yield self._eval_fn(images, labels, mask)


def _prefetch(tasks, depth: int = PREFETCH):
    """Runs the callables of `tasks` in a background thread, `depth` ahead; yields results."""
    with concurrent.futures.ThreadPoolExecutor(1) as worker:
        pending = collections.deque()
        for task in tasks:
            pending.append(worker.submit(task))
            if len(pending) > depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

