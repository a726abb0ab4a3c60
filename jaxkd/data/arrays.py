"""Plain numpy arrays in an `.npz` file.

Keys (either naming):
  * `x_train`, `y_train`, `x_test`, `y_test` (Keras style), or
  * `train_images`, `train_labels`, `test_images`, `test_labels`.
Optional: `class_names` (a string array, one per class; without it the number of classes is
the largest label + 1), `train_coarse_labels`, `test_coarse_labels` and
`coarse_class_names`. Images are uint8 `[N, H, W, C]` (C = 1 or 3; `[N, H, W]` is read as
one channel); labels are integers `[N]` or `[N, 1]`. The file is opened with
`allow_pickle=False`: object arrays are refused.
"""

from __future__ import annotations

import os

import numpy as np

from jaxkd.data.dataset import ArrayDataset, RawData, check, check_labels

_NAMINGS = (("x_train", "y_train", "x_test", "y_test"),
            ("train_images", "train_labels", "test_images", "test_labels"))


def _images(array: np.ndarray, path: str, key: str) -> np.ndarray:
    if array.ndim == 3:
        array = array[..., None]
    check(array.dtype == np.uint8 and array.ndim == 4 and array.shape[-1] in (1, 3),
          f"{path}: '{key}' must be uint8[N, H, W, C] with C = 1 or 3, got "
          f"{array.dtype}{list(array.shape)}")
    return array


def _labels(array: np.ndarray, path: str, key: str, n: int) -> np.ndarray:
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    check(np.issubdtype(array.dtype, np.integer) and array.shape == (n,),
          f"{path}: '{key}' must be integer labels of shape [{n}], got "
          f"{array.dtype}{list(array.shape)}")
    return array.astype(np.int32)


def _open(path: str) -> dict[str, np.ndarray]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config.data.path: no .npz file at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as e:
        raise ValueError(f"{path}: cannot read without pickle ({e}); store plain arrays "
                         "(strings as fixed-width unicode arrays)") from e


def _split(arrays, path, keys, coarse_key) -> ArrayDataset:
    images = _images(arrays[keys[0]], path, keys[0])
    check(len(images) > 0, f"{path}: '{keys[0]}' holds no images (shape "
          f"{list(arrays[keys[0]].shape)}); a run needs at least one training and one test "
          "image")
    labels = _labels(arrays[keys[1]], path, keys[1], len(images))
    coarse = None
    if coarse_key in arrays:
        coarse = _labels(arrays[coarse_key], path, coarse_key, len(images))
    return ArrayDataset(images, labels, coarse)


def _names(arrays, key: str, default_count: int | None) -> tuple[str, ...] | None:
    if key in arrays:
        return tuple(str(n) for n in np.asarray(arrays[key]).reshape(-1))
    if default_count is None:
        return None
    return tuple(str(i) for i in range(default_count))


def load(path: str) -> RawData:
    """Reads train and test arrays from an `.npz` (see the module docstring for the keys).

    Images of another size than `config.data.image_size` are resized by `load_splits`.
    """
    arrays = _open(path)
    naming = next((n for n in _NAMINGS if all(k in arrays for k in n)), None)
    check(naming is not None, f"{path}: expected arrays {list(_NAMINGS[0])} or "
          f"{list(_NAMINGS[1])}, found {sorted(arrays)}")
    train = _split(arrays, path, naming[:2], "train_coarse_labels")
    test = _split(arrays, path, naming[2:], "test_coarse_labels")
    check(train.image_shape == test.image_shape,
          f"{path}: train images {train.image_shape} and test images {test.image_shape} differ")
    largest = max(int(train.labels.max(initial=0)), int(test.labels.max(initial=0)))
    class_names = _names(arrays, "class_names", largest + 1)
    for name, split in (("train", train), ("test", test)):
        check_labels(split.labels, len(class_names), f"{path} ({name} labels)")
    coarse_names = _names(arrays, "coarse_class_names", None)
    coarse_count = len(coarse_names) if coarse_names is not None else 1 + max(
        (int(s.coarse_labels.max()) for s in (train, test) if s.coarse_labels is not None),
        default=0)
    for name, split in (("train", train), ("test", test)):
        if split.coarse_labels is not None:
            check_labels(split.coarse_labels, coarse_count, f"{path} ({name} coarse labels)",
                         "coarse labels")
    return RawData(train, test, class_names, coarse_names, origin=f"npz {path}")
