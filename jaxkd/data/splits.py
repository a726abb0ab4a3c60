"""`load_splits`: read a source, carve the held-out split, subset, and compute statistics.

Order of operations, all reproducible from `seed`:
  1. the source gives its train and test splits (test is never touched below);
  2. `heldout_size` examples are carved out of train, stratified by class (each class gives
     its share of the held-out split, rounded by largest remainder), chosen with
     `numpy.random.default_rng([seed, 1])`; the held-out split therefore does not depend on
     `train_per_class`;
  3. `train_per_class` > 0 keeps that many examples of each class of what is left, chosen
     with `default_rng([seed, 2])`; indices are kept in their original order;
  3b. `test_per_class` > 0 keeps that many examples of each class of the test split (an
     evaluation subset for fast trials), chosen with `default_rng([seed, 3])`, in their
     original order;
  4. the per-channel mean and standard deviation are computed from the final train split
     (in [0, 1] units); streamed data sets use the ImageNet constants instead.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import tarfile
import zipfile
import zlib
from typing import Any

import numpy as np

from jaxkd import validation
from jaxkd.data import (arrays, cifar_binary, host_ops, image_folder, sample, text,
                        tfds_source, tfds_text)
from jaxkd.data.dataset import (HELDOUT_MODES, IMAGENET_MEAN, IMAGENET_STD, LABEL_KEYS,
                                SOURCES, ArrayDataset, DataUnavailableError, RawData, Splits,
                                StreamingDataset, check, check_labels,
                                data_field, field, validate_augment)

_HELDOUT_STREAM, _SUBSET_STREAM, _TEST_SUBSET_STREAM = 1, 2, 3
log = logging.getLogger(__name__)
# What readers raise for missing, truncated or garbled files; turned into a ValueError
# naming config.data.path so the command line prints a message, not a traceback.
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error,
                UnicodeDecodeError)


def _validate(cfg: Any) -> None:
    source = validation.require_choice(data_field(cfg, "source"), "config.data.source",
                                       SOURCES)
    validation.require_choice(data_field(cfg, "heldout_mode"), "config.data.heldout_mode",
                              HELDOUT_MODES)
    for name in ("heldout_size", "train_per_class", "test_per_class"):
        validation.require_int(data_field(cfg, name), f"config.data.{name}", low=0)
    validation.require_int(data_field(cfg, "image_size"), "config.data.image_size", low=1)
    validation.require_int(data_field(cfg, "bptt"), "config.data.bptt", low=1)
    vocab_size = validation.require_int(data_field(cfg, "vocab_size"),
                                        "config.data.vocab_size", low=0)
    check(vocab_size != 1, "config.data.vocab_size must be 0 (every word) or >= 2 (the "
          "words kept, <unk> included), got 1")
    label_key = data_field(cfg, "label_key")
    check(source in ("tfds", "tfds_text") or label_key in LABEL_KEYS,
          f"config.data.label_key must be one of {LABEL_KEYS}, got {label_key!r}")
    if source in ("cifar_binary", "image_folder", "npz"):
        check(bool(data_field(cfg, "path")),
              f"config.data.path must be set when config.data.source={source!r}")
    augment = field(cfg, "augment", None)
    if augment is not None:
        validate_augment(augment)


def _read_source(cfg: Any) -> RawData:
    source, path = data_field(cfg, "source"), os.path.expanduser(data_field(cfg, "path"))
    size, label_key = data_field(cfg, "image_size"), data_field(cfg, "label_key")
    if source == "sample":
        return sample.load(size)
    if source == "cifar_binary":
        return cifar_binary.load(path, label_key)
    if source == "image_folder":
        return image_folder.load(path, size, os.path.expanduser(data_field(cfg, "test_path")))
    if source == "npz":
        return arrays.load(path)
    return tfds_source.load(
        data_field(cfg, "name"), data_dir=data_field(cfg, "data_dir"), label_key=label_key,
        image_key=data_field(cfg, "image_key"), image_size=size,
        train_split=data_field(cfg, "train_split"), test_split=data_field(cfg, "test_split"),
        streaming=data_field(cfg, "streaming"))


def _read(cfg: Any) -> RawData:
    """`_read_source`, with unreadable files reported as a ValueError naming the path."""
    try:
        return _read_source(cfg)
    except DataUnavailableError:   # already one line naming the source and the way out
        raise
    except _READ_ERRORS as err:
        raise ValueError(
            f"config.data.path={data_field(cfg, 'path')!r} (config.data.source="
            f"{data_field(cfg, 'source')!r}) cannot be read: {type(err).__name__}: {err}"
        ) from err


def _use_coarse(raw: RawData, cfg: Any) -> RawData:
    """Makes the coarse labels the target for sources that do not do it themselves."""
    source = data_field(cfg, "source")
    if data_field(cfg, "label_key") != "coarse_label" or source in ("cifar_binary", "tfds"):
        return raw
    check(raw.train.coarse_labels is not None and raw.test.coarse_labels is not None
          and raw.coarse_class_names is not None,
          f"config.data.label_key='coarse_label' but {raw.origin} has no coarse labels "
          f"(and coarse class names) for both its train and test splits")
    train, test = (ArrayDataset(s.images, s.coarse_labels, s.coarse_labels)
                   for s in (raw.train, raw.test))
    return RawData(train, test, raw.coarse_class_names, raw.coarse_class_names, raw.origin)


def _source_name(cfg: Any, raw: RawData) -> str:
    """Where the data came from, naming the config fields: for messages."""
    source, path = data_field(cfg, "source"), data_field(cfg, "path")
    if source in ("cifar_binary", "image_folder", "npz"):
        return f"{raw.origin} (config.data.source={source!r}, config.data.path={path!r})"
    return f"{raw.origin} (config.data.source={source!r})"


def check_not_empty(raw: RawData, cfg: Any) -> None:
    """Raises a ValueError naming the source when its train or test split is empty.

    An empty test split would otherwise fail only after a whole epoch of training, at the
    first evaluation; an empty training split has no step to take.
    """
    for name, split in (("train", raw.train), ("test", raw.test)):
        check(len(split) > 0, f"{_source_name(cfg, raw)}: the {name} split holds no "
              f"examples; a run needs at least one training and one test image")


def warn_one_class(train, cfg: Any, raw: RawData) -> None:
    """Logs a warning when every training label is the same (the data set is almost
    surely not what was meant: a classifier of one class learns nothing)."""
    labels = getattr(train, "labels", None)
    if labels is None or len(labels) == 0:
        return
    values = np.unique(labels)
    if len(values) == 1:
        log.warning("%s: every one of the %d training labels is %d: a one-class data set "
                    "(training a classifier on one class is almost surely a mistake; check "
                    "the labels, config.data.label_key and config.data.train_per_class)",
                    _source_name(cfg, raw), len(labels), int(values[0]))


def resize_all(data: ArrayDataset, size: int) -> ArrayDataset:
    """Resizes every image to size x size (bilinear) with a thread pool."""
    if data.images.shape[1:3] == (size, size):
        return data
    with concurrent.futures.ThreadPoolExecutor((os.cpu_count() or 1) + 2) as pool:
        images = np.stack(list(pool.map(lambda a: host_ops.resize_square(a, size),
                                        data.images, chunksize=256)))
    return ArrayDataset(images, data.labels, data.coarse_labels)


def stratified_choice(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `size` examples, each class contributing its share of `size`."""
    classes, counts = np.unique(labels, return_counts=True)
    quota = size * counts / len(labels)
    take = np.floor(quota).astype(np.int64)
    order = np.argsort(-(quota - take), kind="stable")
    take[order[:size - int(take.sum())]] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen))


def carve_heldout(train, size: int, seed: int, mode: str = "carve"):
    """Splits `train` into (rest, heldout) with `size` held-out examples (0: no heldout).

    With `mode='sample'` the held-out examples stay in the training split as well: the
    other reading of [RCO] Sec. 3.5's X', "10k examples random sampled from training set",
    under which teacher and student still train on all of it.
    """
    if size == 0:
        return train, None
    check(size < len(train), f"config.data.heldout_size={size} must be smaller than the "
          f"{len(train)} training examples")
    rng = np.random.default_rng([seed, _HELDOUT_STREAM])
    if train.labels is None:  # Streamed without labels: a plain random choice.
        held = np.sort(rng.choice(len(train), size, replace=False))
    else:
        held = stratified_choice(train.labels, size, rng)
    if mode == "sample":
        return train, train.subset(held)
    rest = np.setdiff1d(np.arange(len(train)), held, assume_unique=True)
    return train.subset(rest), train.subset(held)


def _train_and_heldout(train, data_cfg, num_classes: int, seed: int):
    """The training subset (`train_per_class`) and the held-out split: carved out of the
    full training set before the subset is drawn ('carve'), or sampled from the subset the
    model trains on ('sample': its examples are training examples)."""
    size, mode = data_field(data_cfg, "heldout_size"), data_field(data_cfg, "heldout_mode")
    per_class = data_field(data_cfg, "train_per_class")
    if mode == "sample":
        train = per_class_subset(train, per_class, num_classes, seed)
        return carve_heldout(train, size, seed, mode)
    train, heldout = carve_heldout(train, size, seed, mode)
    return per_class_subset(train, per_class, num_classes, seed), heldout


def per_class_subset(train, per_class: int, num_classes: int, seed: int, *,
                     split: str = "train"):
    """Keeps `per_class` examples of each class (0: everything).

    `split='test'` subsets the test split (`config.data.test_per_class`) with its own
    random stream, so the evaluation subset does not depend on the training subset.
    """
    if per_class == 0:
        return train
    name = f"config.data.{split}_per_class"
    check(train.labels is not None, f"{name} needs labels known ahead; it is not available "
          f"for streamed data sets without labels")
    stream = _SUBSET_STREAM if split == "train" else _TEST_SUBSET_STREAM
    rng = np.random.default_rng([seed, stream])
    chosen = []
    for c in range(num_classes):
        members = np.flatnonzero(train.labels == c)
        check(len(members) >= per_class, f"{name}={per_class} but class "
              f"{c} has only {len(members)} {split} examples")
        chosen.append(rng.permutation(members)[:per_class])
    return train.subset(np.sort(np.concatenate(chosen)))


def channel_stats(images: np.ndarray):
    """Per-channel mean and standard deviation of uint8 images, in [0, 1] units.

    Exact and fast: from the histogram of the 256 pixel values of each channel.
    """
    values = np.arange(256, dtype=np.float64)
    mean, std = [], []
    for c in range(images.shape[-1]):
        counts = np.bincount(images[..., c].reshape(-1), minlength=256).astype(np.float64)
        total = counts.sum()
        m = (counts @ values) / total
        mean.append(m)
        std.append(np.sqrt(max((counts @ values ** 2) / total - m * m, 0.0)))
    return (np.array(mean) / 255).astype(np.float32), \
        (np.maximum(np.array(std), 1e-3) / 255).astype(np.float32)


def load_splits(data_cfg: Any, *, seed: int) -> Splits:
    """Reads `config.data` into train / test / heldout splits.

    Args:
        data_cfg: `config.data` (ConfigDict or dict), fields described in docs/data.md.
        seed: the run's seed; fixes the held-out split and the per-class subset.

    Returns:
        Splits with ArrayDatasets (or StreamingDatasets for ImageNet-sized data); for a
        text source ('ptb', 'text_sample') `jaxkd.data.text.TextSplits`.
    """
    _validate(data_cfg)
    if data_field(data_cfg, "source") == "tfds_text":
        return tfds_text.load(
            data_field(data_cfg, "name"), bptt=data_field(data_cfg, "bptt"),
            data_dir=data_field(data_cfg, "data_dir"),
            text_key=data_field(data_cfg, "text_key"),
            train_split=data_field(data_cfg, "train_split"),
            test_split=data_field(data_cfg, "test_split"),
            vocab_size=data_field(data_cfg, "vocab_size"))
    if data_field(data_cfg, "source") in text.TEXT_SOURCES:
        return text.load_source(data_field(data_cfg, "source"), data_field(data_cfg, "path"),
                                data_field(data_cfg, "bptt"))
    raw = _use_coarse(_read(data_cfg), data_cfg)
    check_not_empty(raw, data_cfg)
    size, num_classes = data_field(data_cfg, "image_size"), len(raw.class_names)
    train, test = raw.train, raw.test
    if isinstance(train, ArrayDataset):
        train, test = resize_all(train, size), resize_all(test, size)
        for name, split in (("train", train), ("test", test)):
            check_labels(split.labels, num_classes, f"{raw.origin} ({name} split)")
    train, heldout = _train_and_heldout(train, data_cfg, num_classes, seed)
    test = per_class_subset(test, data_field(data_cfg, "test_per_class"), num_classes, seed,
                            split="test")
    warn_one_class(train, data_cfg, raw)
    if isinstance(train, StreamingDataset):
        mean, std = np.array(IMAGENET_MEAN, np.float32), np.array(IMAGENET_STD, np.float32)
    else:
        mean, std = channel_stats(train.images)
    return Splits(train, test, heldout, num_classes, tuple(raw.class_names),
                  raw.coarse_class_names, mean, std, size)
