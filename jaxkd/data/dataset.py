"""The containers every source returns, and reading fields of the data config.

A source returns an `ArrayDataset` per split (uint8 images in memory) or, for data sets too
large for host memory (ImageNet), a `StreamingDataset` that decodes examples on demand.
`load_splits` gathers them into one `Splits`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from jaxkd import config as config_lib
from jaxkd.validation import check, require_bool, require_choice, require_int

SOURCES = ("sample", "tfds", "cifar_binary", "image_folder", "npz", "ptb", "text_sample",
           "tfds_text")
AUGMENT_KINDS = ("cifar", "imagenet", "none")
PAD_MODES = ("constant", "reflect")
LABEL_KEYS = ("label", "coarse_label")

# Per-channel statistics, in [0, 1] units, for streamed data where a pass over the training
# set to compute them would be too costly (ImageNet, as in torchvision and flax examples).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

HELDOUT_MODES = ("carve", "sample")


def _schema_defaults() -> tuple[dict[str, Any], dict[str, Any]]:
    """The defaults of `config.data` and of `config.data.augment`, as plain dicts.

    They are written once, in `jaxkd.config.default_config()`; a plain dict given as the
    data config (`load_splits(dict(source="sample"))`) falls back to them field by field.
    """
    data = config_lib.default_config().data.to_dict()
    augment = data.pop("augment")
    return data, augment


_DEFAULTS, _AUGMENT_DEFAULTS = _schema_defaults()


def field(cfg: Any, name: str, default: Any = None) -> Any:
    """Reads `name` from a ConfigDict or a plain dict, falling back to `default`."""
    if cfg is None:
        return default
    if isinstance(cfg, Mapping):
        return cfg.get(name, default)
    try:
        return cfg.get(name, default)
    except AttributeError:
        return getattr(cfg, name, default)


def data_field(cfg: Any, name: str) -> Any:
    """Reads a field of `config.data` with the schema's default."""
    return field(cfg, name, _DEFAULTS[name])


def augment_field(cfg: Any, name: str) -> Any:
    """Reads a field of `config.data.augment` with the schema's default."""
    return field(cfg, name, _AUGMENT_DEFAULTS[name])


class DataUnavailableError(OSError):
    """The data could not be had from its source (a failed download or prepare).

    An environment failure, not bad input: the CLI exits with code 5 and one line saying
    what failed and how to point the run at a local copy.
    """


# `check(cond, message)` (imported above) is `jaxkd.validation.check`, re-exported for the
# data modules.


def validate_augment(cfg: Any) -> None:
    """Checks `config.data.augment`; raises ValueError naming the field."""
    require_choice(augment_field(cfg, "kind"), "config.data.augment.kind", AUGMENT_KINDS)
    require_choice(augment_field(cfg, "pad_mode"), "config.data.augment.pad_mode", PAD_MODES)
    require_int(augment_field(cfg, "crop_padding"), "config.data.augment.crop_padding", low=0)
    require_bool(augment_field(cfg, "flip"), "config.data.augment.flip")


@dataclasses.dataclass(frozen=True)
class ArrayDataset:
    """One split held in host memory.

    Attributes:
        images: uint8[N, H, W, C].
        labels: int32[N], the training target (fine or coarse label).
        coarse_labels: int32[N] CIFAR-100 superclasses, or None where the source has none.
    """
    images: np.ndarray
    labels: np.ndarray
    coarse_labels: np.ndarray | None = None

    def __post_init__(self):
        check(self.images.dtype == np.uint8 and self.images.ndim == 4,
              f"images must be uint8[N, H, W, C], got {self.images.dtype}{self.images.shape}")
        check(self.labels.ndim == 1 and len(self.labels) == len(self.images),
              f"labels must be int[{len(self.images)}], got shape {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def subset(self, indices: np.ndarray) -> "ArrayDataset":
        """The examples at `indices`, in that order."""
        coarse = None if self.coarse_labels is None else self.coarse_labels[indices]
        return ArrayDataset(self.images[indices], self.labels[indices], coarse)


@dataclasses.dataclass(frozen=True)
class StreamingDataset:
    """A split read example by example (ImageNet through `tfds.data_source`).

    Attributes:
        read: `read(indices) -> list[(image uint8[h, w, C], label int)]`, any image size.
        length: number of examples.
        name: where the data comes from, for error messages.
        labels: int32[N] when known without decoding every image, else None (then heldout
            carving is not stratified and `train_per_class` is not available).
    """
    read: Callable[[Sequence[int]], list]
    length: int
    name: str = ""
    labels: np.ndarray | None = None
    coarse_labels = None

    def __len__(self) -> int:
        return self.length

    def subset(self, indices: np.ndarray) -> "StreamingDataset":
        """A view of the examples at `indices`."""
        indices = np.asarray(indices, np.int64)
        base = self.read
        labels = None if self.labels is None else self.labels[indices]
        return StreamingDataset(lambda idx: base([int(indices[i]) for i in idx]),
                                len(indices), self.name, labels)


@dataclasses.dataclass(frozen=True)
class Splits:
    """Everything a phase needs to know about the data.

    Attributes:
        train, test: the training split and the split accuracy is reported on.
        heldout: carved from train (`config.data.heldout_size`), or None.
        num_classes: number of classes of `labels`.
        class_names: one name per class, in label order.
        coarse_class_names: CIFAR-100 superclass names, or None.
        mean, std: float32[C] per-channel statistics in [0, 1] units used to normalise.
        image_size: side of the square images the model sees.
    """
    train: ArrayDataset | StreamingDataset
    test: ArrayDataset | StreamingDataset
    heldout: ArrayDataset | StreamingDataset | None
    num_classes: int
    class_names: tuple[str, ...]
    coarse_class_names: tuple[str, ...] | None
    mean: np.ndarray
    std: np.ndarray
    image_size: int = 32

    @property
    def streaming(self) -> bool:
        return isinstance(self.train, StreamingDataset)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the images a model sees (streamed images are RGB)."""
        if isinstance(self.train, ArrayDataset):
            return self.train.image_shape
        return (self.image_size, self.image_size, 3)

    def split(self, name: str) -> ArrayDataset | StreamingDataset:
        """The split called `name` ('train', 'test' or 'heldout')."""
        require_choice(name, "split", ("train", "test", "heldout"))
        value = getattr(self, name)
        check(value is not None, "no heldout split: set config.data.heldout_size > 0")
        return value


@dataclasses.dataclass(frozen=True)
class RawData:
    """What a source reader returns before the common post-processing of `load_splits`."""
    train: ArrayDataset | StreamingDataset
    test: ArrayDataset | StreamingDataset
    class_names: tuple[str, ...]
    coarse_class_names: tuple[str, ...] | None
    origin: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


def check_labels(labels: np.ndarray, num_classes: int, origin: str, what: str = "labels"):
    """Raises ValueError naming `origin` when a label is outside [0, num_classes)."""
    if len(labels) == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    check(low >= 0 and high < num_classes,
          f"{origin}: {what} out of range: found values in [{low}, {high}] but there are "
          f"{num_classes} classes (valid labels are 0..{num_classes - 1})")
