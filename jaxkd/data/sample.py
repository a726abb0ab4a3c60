"""The small CIFAR-10 sample bundled with the package (`config.data.source='sample'`).

`sample/cifar10_sample.tar` holds original CIFAR-10 JPEG files (bytes as found in
`shared/data/cifar10-jpeg/`, not re-encoded): the first 250 training and the first 100 test
images of each of the 10 classes by sorted file name, laid out `train/<class>/<NNNN>.jpg` and
`test/<class>/<NNNN>.jpg`. `sample/README.md` tells how it was made (by
`jaxkd/data/make_sample.py`) and how to train on it. It needs no network.
"""

from __future__ import annotations

import os
import re
import tarfile

from jaxkd.data import image_folder
from jaxkd.data.dataset import RawData

SAMPLE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample")
SAMPLE_ARCHIVE = os.path.join(SAMPLE_DIR, "cifar10_sample.tar")
TRAIN_PER_CLASS = 250
TEST_PER_CLASS = 100
_TEST_MEMBER = re.compile(r"^test/([A-Za-z0-9_-]+)/([0-9]+)\.jpg$")


def load(image_size: int = 32) -> RawData:
    """Reads the bundled sample (2,500 train and 1,000 test images, 10 balanced classes)."""
    if not os.path.isfile(SAMPLE_ARCHIVE):
        raise FileNotFoundError(
            f"the bundled sample {SAMPLE_ARCHIVE} is missing; rebuild it with "
            "`python -m jaxkd.data.make_sample --src <folder with cifar10-jpeg/train.tar.gz "
            "and test.tar.gz>`")
    raw = image_folder.load(SAMPLE_ARCHIVE, image_size=image_size)
    return RawData(raw.train, raw.test, raw.class_names, None, origin="bundled sample")


def sample_test_images(per_class: int = 1) -> list[tuple[str, str, bytes]]:
    """The first `per_class` test JPEGs of each class of the bundled sample (never trained
    on), sorted by archive name: `(name, class_name, jpeg_bytes)`, the name as in the
    archive (`test/<class>/<NNNN>.jpg`), the bytes unchanged."""
    taken: dict[str, int] = {}
    images = []
    with tarfile.open(SAMPLE_ARCHIVE) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            match = _TEST_MEMBER.match(member.name)
            if not member.isfile() or match is None:
                continue
            label = match.group(1)
            if taken.get(label, 0) >= per_class:
                continue
            taken[label] = taken.get(label, 0) + 1
            images.append((member.name, label, tar.extractfile(member).read()))
    return images
