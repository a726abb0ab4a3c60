"""`load_splits`: config checks, the held-out split, per-class subsets, channel statistics."""
import numpy as np
import pytest

from jaxkd import data
from jaxkd.data import splits as splits_lib
from tests.data.synthetic import _ids, _indexed
from jaxkd.config import default_config


@pytest.mark.parametrize("cfg, message", [
    (dict(source="csv"), "config.data.source must be one of"),
    (dict(source="npz"), "config.data.path must be set"),
    (dict(source="sample", heldout_size=-1), "config.data.heldout_size"),
    (dict(source="sample", label_key="fine"), "config.data.label_key"),
    (dict(source="sample", augment=dict(kind="autoaugment")), "config.data.augment.kind"),
])
def test_config_errors_name_the_field(cfg, message):
    with pytest.raises(ValueError, match=message):
        data.load_splits(cfg, seed=0)


def _npz(tmp_path, n=600, num_classes=6):
    train, test = _indexed(n, num_classes), _indexed(60, num_classes)
    path = tmp_path / "indexed.npz"
    np.savez(path, x_train=train.images, y_train=train.labels, x_test=test.images,
             y_test=test.labels)
    return dict(source="npz", path=str(path), image_size=4)


def test_heldout_is_disjoint_stratified_and_reproducible(tmp_path):
    cfg = dict(_npz(tmp_path), heldout_size=60)
    a, b = data.load_splits(cfg, seed=3), data.load_splits(cfg, seed=3)
    c = data.load_splits(cfg, seed=4)
    held, train = _ids(a.heldout.images), _ids(a.train.images)
    assert len(held) == 60 and not set(held) & set(train)
    assert sorted(set(held) | set(train)) == list(range(600))
    assert (np.bincount(a.heldout.labels) == 10).all()
    np.testing.assert_array_equal(held, _ids(b.heldout.images))
    assert set(held) != set(_ids(c.heldout.images))
    sub = data.load_splits(dict(cfg, train_per_class=20), seed=3)
    np.testing.assert_array_equal(_ids(sub.heldout.images), held)  # independent of subset
    assert (np.bincount(sub.train.labels) == 20).all()
    assert not set(_ids(sub.train.images)) & set(held)
    with pytest.raises(ValueError, match="config.data.train_per_class=200"):
        data.load_splits(dict(cfg, train_per_class=200), seed=3)
    with pytest.raises(ValueError, match="config.data.heldout_size=600"):
        data.load_splits(dict(cfg, heldout_size=600), seed=3)


# -- new -------------------------------------------------------------------------------------

def test_stratified_choice_gives_each_class_its_share_by_largest_remainder():
    labels = np.array([0] * 5 + [1] * 3 + [2] * 2)        # quotas of 4: 2.0, 1.2, 0.8
    chosen = splits_lib.stratified_choice(labels, 4, np.random.default_rng(0))
    assert len(chosen) == 4 and list(chosen) == sorted(chosen)
    assert list(np.bincount(labels[chosen], minlength=3)) == [2, 1, 1]
    assert len(set(chosen)) == 4


def test_channel_stats_by_hand():
    images = np.zeros((1, 1, 2, 3), np.uint8)
    images[0, 0, :, 0] = (0, 255)          # mean 1/2, std 1/2
    images[0, 0, :, 1] = (51, 51)          # mean 0.2, std 0: floored at 1e-3 / 255
    images[0, 0, :, 2] = (255, 255)
    mean, std = splits_lib.channel_stats(images)
    assert mean.dtype == std.dtype == np.float32
    np.testing.assert_allclose(mean, [0.5, 0.2, 1.0], rtol=1e-6)
    np.testing.assert_allclose(std, [0.5, 1e-3 / 255, 1e-3 / 255], rtol=1e-5)


def test_heldout_mode_sample_keeps_the_training_split_whole(tmp_path):
    cfg = dict(_npz(tmp_path), heldout_size=60, heldout_mode="sample")
    s = data.load_splits(cfg, seed=3)
    assert len(s.train) == 600 and len(s.heldout) == 60
    assert set(_ids(s.heldout.images)) <= set(_ids(s.train.images))
    carved = data.load_splits(dict(cfg, heldout_mode="carve"), seed=3)
    np.testing.assert_array_equal(_ids(carved.heldout.images), _ids(s.heldout.images))
    # with a per-class subset the sample is drawn from the examples the model trains on
    sub = data.load_splits(dict(cfg, train_per_class=20), seed=3)
    assert len(sub.train) == 120 and len(sub.heldout) == 60
    assert set(_ids(sub.heldout.images)) <= set(_ids(sub.train.images))


def test_test_per_class_subsets_the_test_split_in_order(tmp_path):
    cfg = dict(_npz(tmp_path), test_per_class=3)
    s = data.load_splits(cfg, seed=0)
    assert len(s.test) == 18 and (np.bincount(s.test.labels) == 3).all()
    ids = _ids(s.test.images)
    assert list(ids) == sorted(ids) and len(s.train) == 600
    with pytest.raises(ValueError, match=r"config.data.test_per_class=11 but class 0 has "
                                         r"only 10 test examples"):
        data.load_splits(dict(cfg, test_per_class=11), seed=0)


def test_unreadable_file_is_a_value_error_naming_the_path(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match=r"config.data.path=.*bad\.npz.*cannot be read"):
        data.load_splits(dict(source="npz", path=str(bad)), seed=0)


def test_coarse_label_key_needs_coarse_labels(tmp_path):
    with pytest.raises(ValueError, match="label_key='coarse_label' but npz .* has no coarse"):
        data.load_splits(dict(_npz(tmp_path), label_key="coarse_label"), seed=0)


def test_test_per_class_is_a_stratified_subset_of_the_test_split():
    full = data.load_splits({"source": "sample"}, seed=0)
    sub = data.load_splits({"source": "sample", "test_per_class": 7}, seed=0)
    assert len(sub.test) == 7 * full.num_classes
    assert np.bincount(sub.test.labels, minlength=full.num_classes).tolist() == \
        [7] * full.num_classes
    assert len(sub.train) == len(full.train)          # train untouched
    again = data.load_splits({"source": "sample", "test_per_class": 7}, seed=0)
    np.testing.assert_array_equal(again.test.images, sub.test.images)
    # The subset is drawn from the test split, in its order.
    rows = {im.tobytes(): i for i, im in enumerate(full.test.images)}
    idx = [rows[im.tobytes()] for im in sub.test.images]
    assert idx == sorted(idx)


def test_test_per_class_is_validated_and_in_the_schema():
    assert default_config().data.test_per_class == 0
    with pytest.raises(ValueError, match="config.data.test_per_class must be an integer >= 0"):
        data.load_splits({"source": "sample", "test_per_class": -1}, seed=0)
    with pytest.raises(ValueError, match=r"config.data.test_per_class=100000 but class 0"):
        data.load_splits({"source": "sample", "test_per_class": 100000}, seed=0)
