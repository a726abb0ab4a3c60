"""The small CIFAR-10 sample bundled with the package (`config.data.source='sample'`).

`sample/cifar10_sample.tar` holds original CIFAR-10 JPEG files (bytes as found in
`shared/data/cifar10-jpeg/`, not re-encoded): the first 250 training and the first 100 test
images of each of the 10 classes by sorted file name, laid out `train/<class>/<NNNN>.jpg` and
`test/<class>/<NNNN>.jpg`. `sample/README.md` tells how it was made (by
`jaxkd/data/make_sample.py`) and how to train on it. It needs no network.
"""

from __future__ import annotations

import os

from jaxkd.data import image_folder
from jaxkd.data.dataset import RawData

SAMPLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample")
SAMPLE_ARCHIVE = os.path.join(SAMPLE_DIR, "cifar10_sample.tar")
TRAIN_PER_CLASS = 250
TEST_PER_CLASS = 100


def load(image_size: int = 32) -> RawData:
    """Reads the bundled sample (2,500 train and 1,000 test images, 10 balanced classes)."""
    if not os.path.isfile(SAMPLE_ARCHIVE):
        raise FileNotFoundError(
            f"the bundled sample {SAMPLE_ARCHIVE} is missing; rebuild it with "
            "`python -m jaxkd.data.make_sample --src <folder with cifar10-jpeg/train.tar.gz "
            "and test.tar.gz>`")
    raw = image_folder.load(SAMPLE_ARCHIVE, image_size=image_size)
    return RawData(raw.train, raw.test, raw.class_names, None, origin="bundled sample")
