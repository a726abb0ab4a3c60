"""TensorFlow Datasets through `tfds.data_source` (random access, no TensorFlow needed).

Small data sets (CIFAR-10, CIFAR-100, MNIST, ...) are read once into uint8 numpy arrays,
resized to `image_size` where their images differ. Large ones (ImageNet) are streamed: the
returned `StreamingDataset` decodes examples when the pipeline asks for them. Which one is
decided by `config.data.streaming`: 'auto' streams when the training split would take more
than 4 GiB as uint8 at `image_size` (or, when TFDS does not know the split sizes, when the
name starts with 'imagenet'); True or False force it.

Splits: `config.data.train_split` (default 'train') and `config.data.test_split` (default
'test', or 'validation' where the data set has no labelled test split, as ImageNet).
"""

from __future__ import annotations

import concurrent.futures
import os

import numpy as np

from jaxkd.data import host_ops
from jaxkd.data.dataset import (ArrayDataset, DataUnavailableError, RawData,
                                StreamingDataset, check, check_labels)

STREAM_BYTES = 4 << 30
_CHUNK = 512


def import_tfds():
    """tensorflow_datasets, imported only by this source (an optional extra of jaxkd).

    Raises:
        DataUnavailableError: naming the extra to install, or the local alternatives.
    """
    try:
        import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    except ImportError as err:
        raise DataUnavailableError(
            f"config.data.source='tfds' needs TensorFlow Datasets, which is not installed "
            f"({err}): pip install 'jaxkd[tfds]', or read a local copy with "
            f"--config.data.source=cifar_binary / image_folder / npz (docs/data.md)") from err
    return tfds


def _builder(name: str, data_dir: str):
    tfds = import_tfds()
    check(bool(name), "config.data.name must name a TFDS data set (e.g. 'cifar100') when "
          "config.data.source='tfds'")
    try:
        return tfds.builder(name, data_dir=data_dir or None)
    except tfds.core.registered.DatasetNotFoundError as e:
        first = str(e).splitlines()[0]
        raise ValueError(f"config.data.name={name!r} is not a data set TFDS knows ({first}); "
                         "see tfds.list_builders()") from e


def _class_label(features, key: str, field_name: str):
    """The ClassLabel feature `key`; raises naming `field_name` when absent."""
    keys = sorted(features.keys())
    check(key in features, f"{field_name}={key!r} is not a feature of this data set; "
          f"features: {keys}")
    feature = features[key]
    check(hasattr(feature, "num_classes"), f"{field_name}={key!r} is not a class label")
    return feature


def _test_split(info, name: str, requested: str) -> str:
    if requested:
        return requested
    known = set(info.splits.keys())
    if name.startswith("imagenet") or ("test" not in known and "validation" in known):
        return "validation"
    return "test"


def _local_hint(name: str) -> str:
    if name.startswith("cifar"):
        return (f"--config.data.source=cifar_binary --config.data.path=/path/to/"
                f"{name.replace('cifar', 'cifar-')}-binary.tar.gz")
    return "--config.data.source=image_folder (or npz) --config.data.path=/path/to/data"


def data_source(tfds, name: str, split: str, data_dir: str):
    """`tfds.data_source`, its download/prepare failure turned into one clear line.

    Raises:
        DataUnavailableError: naming the data set, the folder, the cause and the local
            alternative (see docs/data.md).
    """
    try:
        # array_record named explicitly: with a data_dir, TFDS leaves its default (tfrecord),
        # which data_source cannot read and which needs TensorFlow to write.
        return tfds.data_source(name, split=split, data_dir=data_dir or None,
                                builder_kwargs=dict(file_format="array_record"))
    except Exception as err:  # pylint: disable=broad-except  # any download/prepare failure
        where = data_dir or "TFDS's default data dir (~/tensorflow_datasets)"
        if _needs_tensorflow(err):
            raise DataUnavailableError(
                f"config.data.source='tfds': preparing {name!r} the first time needs "
                f"TensorFlow, which TFDS uses to encode its images (reading a prepared copy "
                f"does not): pip install tensorflow-cpu, prepare once into {where}, or "
                f"use a local copy: {_local_hint(name)} (docs/data.md)") from err
        cause = " ".join(str(err).split())[:300]
        raise DataUnavailableError(
            f"config.data.source='tfds': TFDS could not download or prepare {name!r} "
            f"({split}) into {where}: {type(err).__name__}: {cause}. Offline, point the run "
            f"at a local copy: {_local_hint(name)} (docs/data.md)") from err


def _needs_tensorflow(err: BaseException | None) -> bool:
    """Whether `err` (or an exception it was raised from) is TensorFlow missing."""
    while err is not None:
        if "No module named 'tensorflow'" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def _get_many(source, indices) -> list:
    """Examples at `indices`; batched read where the source supports it."""
    indices = [int(i) for i in indices]
    try:
        return list(source.__getitems__(indices))
    except (AttributeError, TypeError):  # Older sources and tfds' own mock lack it.
        return [source[i] for i in indices]


def _as_image(image, image_size: int | None) -> np.ndarray:
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    if image_size:
        image = host_ops.resize_square(image, image_size)
    return image


def _read_all(source, keys, image_size: int, where: str) -> ArrayDataset:
    """Reads a whole split into memory with a thread pool."""
    image_key, label_key, coarse_key = keys
    n = len(source)
    check(n > 0, f"{where}: the split is empty")
    first = _as_image(source[0][image_key], image_size)
    images = np.empty((n,) + first.shape, np.uint8)
    labels = np.empty(n, np.int32)
    coarse = np.empty(n, np.int32) if coarse_key else None

    def work(start):
        examples = _get_many(source, range(start, min(start + _CHUNK, n)))
        for j, example in enumerate(examples):
            images[start + j] = _as_image(example[image_key], image_size)
            labels[start + j] = example[label_key]
            if coarse is not None:
                coarse[start + j] = example[coarse_key]

    with concurrent.futures.ThreadPoolExecutor(min(8, (os.cpu_count() or 1) + 2)) as pool:
        for future in [pool.submit(work, s) for s in range(0, n, _CHUNK)]:
            future.result()
    return ArrayDataset(images, labels, coarse)


def _streaming(source, keys, where: str) -> StreamingDataset:
    image_key, label_key, _ = keys

    def read(indices):
        return [(_as_image(ex[image_key], None), int(ex[label_key]))
                for ex in _get_many(source, indices)]

    return StreamingDataset(read, len(source), where)


def _should_stream(info, name: str, split: str, image_size: int, streaming) -> bool:
    if streaming in (True, False):
        return streaming
    check(streaming == "auto", f"config.data.streaming must be 'auto', True or False, "
          f"got {streaming!r}")
    if split in info.splits:
        size = info.splits[split].num_examples * image_size * image_size * 3
        return size > STREAM_BYTES
    return name.startswith("imagenet")


def load(name: str, *, data_dir: str = "", label_key: str = "label", image_key: str = "",
         image_size: int = 32, train_split: str = "", test_split: str = "",
         streaming="auto") -> RawData:
    """Opens a TFDS image-classification data set.

    Args:
        name: TFDS name (`config.data.name`), e.g. 'cifar100', 'imagenet2012'.
        data_dir: where TFDS keeps prepared data ('' = TFDS's default).
        label_key: the class-label feature ('label', or 'coarse_label' for CIFAR-100).
        image_key: the image feature ('' = the data set's supervised key, else 'image').

    Returns:
        RawData of ArrayDatasets, or of StreamingDatasets for large data sets.
    """
    tfds = import_tfds()
    builder = _builder(name, data_dir)
    info = builder.info
    supervised = info.supervised_keys or ("image", None)
    image_key = image_key or supervised[0]
    check(image_key in info.features, f"config.data.image_key={image_key!r} is not a feature "
          f"of {name}; features: {sorted(info.features.keys())}")
    label = _class_label(info.features, label_key, "config.data.label_key")
    has_coarse = "coarse_label" in info.features
    coarse_names = tuple(info.features["coarse_label"].names) if has_coarse else None
    keys = (image_key, label_key, "coarse_label" if has_coarse else None)
    splits = (train_split or "train", _test_split(info, name, test_split))
    stream = _should_stream(info, name, splits[0], image_size, streaming)
    out = []
    for split in splits:
        where = f"tfds {name} ({split})"
        source = data_source(tfds, name, split, data_dir)
        if stream:
            out.append(_streaming(source, keys, where))
        else:
            data = _read_all(source, keys, image_size, where)
            check_labels(data.labels, label.num_classes, where)
            if data.coarse_labels is not None:
                check_labels(data.coarse_labels, len(coarse_names), where, "coarse labels")
            out.append(data)
    return RawData(out[0], out[1], tuple(label.names), coarse_names, origin=f"tfds {name}")
