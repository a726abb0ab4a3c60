"""The CIFAR-10 sample bundled with the package (`config.data.source='sample'`)."""
import os

import numpy as np
import pytest

from jaxkd import data
from jaxkd.data import sample


def test_bundled_sample_is_balanced_real_cifar10():
    s = data.load_splits(dict(source="sample"), seed=0)
    assert s.train.images.shape == (10 * sample.TRAIN_PER_CLASS, 32, 32, 3)
    assert (np.bincount(s.train.labels) == sample.TRAIN_PER_CLASS).all()
    assert (np.bincount(s.test.labels) == sample.TEST_PER_CLASS).all()
    assert s.class_names[:3] == ("airplane", "automobile", "bird") and s.num_classes == 10
    assert 0.4 < float(s.mean[0]) < 0.6 and 0.15 < float(s.std[0]) < 0.35
    assert os.path.getsize(sample.SAMPLE_ARCHIVE) < 12 * 2 ** 20


# -- new -------------------------------------------------------------------------------------

def test_missing_sample_says_how_to_rebuild_it(monkeypatch, tmp_path):
    monkeypatch.setattr(sample, "SAMPLE_ARCHIVE", str(tmp_path / "gone.tar"))
    with pytest.raises(FileNotFoundError, match=r"gone\.tar is missing; rebuild it with "
                                                r"`python -m jaxkd\.data\.make_sample"):
        sample.load()


def test_sample_at_another_image_size_keeps_its_origin():
    raw = sample.load(image_size=8)
    assert raw.origin == "bundled sample" and raw.coarse_class_names is None
    assert raw.train.images.shape == (10 * sample.TRAIN_PER_CLASS, 8, 8, 3)
    assert len(raw.test) == 10 * sample.TEST_PER_CLASS


def test_sample_test_images_are_the_archives_first_test_jpegs_per_class():
    import tarfile
    images = sample.sample_test_images(per_class=2)
    classes = sorted({label for _, label, _ in images})
    assert len(classes) == 10 and [label for _, label, _ in images] == \
        [c for c in classes for _ in range(2)]
    assert [name for name, _, _ in images] == \
        [f"test/{c}/{i:04d}.jpg" for c in classes for i in range(2)]
    with tarfile.open(sample.SAMPLE_ARCHIVE) as tar:
        for name, _, data in images:
            assert data == tar.extractfile(name).read() and data[:2] == b"\xff\xd8"
    assert sample.sample_test_images(per_class=1) == images[::2]
