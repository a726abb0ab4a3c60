"""Synthetic splits shared by the data tests: images whose first pixels encode their index."""
import numpy as np

from jaxkd import data


def _indexed(n, num_classes, size=4):
    """uint8 images whose first pixels encode their index; labels i % num_classes."""
    images = np.zeros((n, size, size, 3), np.uint8)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    return data.ArrayDataset(images, (np.arange(n) % num_classes).astype(np.int32))


def _ids(images):
    images = np.rint(np.asarray(images, np.float64)).astype(int)
    return images[:, 0, 0, 0] + 256 * images[:, 0, 0, 1]


def _splits(n_train=100, n_test=37):
    train, test = _indexed(n_train, 5), _indexed(n_test, 5)
    return data.Splits(train=train, test=test, heldout=None, num_classes=5,
                       class_names=tuple("abcde"), coarse_class_names=None,
                       mean=np.zeros(3, np.float32), std=np.ones(3, np.float32) / 255,
                       image_size=4)


NO_AUG = dict(kind="none")
