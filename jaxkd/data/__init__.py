"""Data: sources, the bundled sample, device-side augmentation and the batch pipeline.

Public API:
  * `load_splits(data_cfg, *, seed) -> Splits` reads `config.data` (sources 'sample',
    'tfds', 'cifar_binary', 'image_folder', 'npz'), carves the held-out split and the
    per-class subset, and computes the per-channel mean and std.
  * `make_pipeline(splits, *, mesh, batch_size, eval_batch_size, augment_cfg, seed)` gives
    a `Pipeline` (`DevicePipeline` or `StreamingPipeline`): `steps_per_epoch`,
    `train_batches(epoch, start_step=0)` and `eval_batches(split='test')`, sharded
    `P('data')`.
  * `augment`: the jit-able CIFAR augmentation and `normalize`.
See docs/data.md.
"""

from jaxkd.data.augment import make_augment, normalize
from jaxkd.data.dataset import (AUGMENT_KINDS, SOURCES, ArrayDataset, Splits,
                                StreamingDataset)
from jaxkd.data.batching import Pipeline, epoch_permutation, step_key
from jaxkd.data.pipeline import DevicePipeline, make_pipeline
from jaxkd.data.splits import channel_stats, load_splits
from jaxkd.data.streaming import StreamingPipeline

__all__ = [
    "AUGMENT_KINDS", "SOURCES", "ArrayDataset", "DevicePipeline", "Pipeline", "Splits",
    "StreamingDataset", "StreamingPipeline", "channel_stats", "epoch_permutation",
    "load_splits", "make_augment", "make_pipeline", "normalize", "step_key",
]
