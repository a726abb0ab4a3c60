"""Plain numpy arrays in an `.npz` file (`config.data.source='npz'`)."""
import numpy as np
import pytest

from jaxkd import data
from jaxkd.data import arrays


def test_npz_both_namings_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    y = np.arange(12) % 3
    np.savez(tmp_path / "a.npz", x_train=x, y_train=y[:, None], x_test=x[:4], y_test=y[:4],
             class_names=np.array(["u", "v", "w"]))
    s = data.load_splits(dict(source="npz", path=str(tmp_path / "a.npz"), image_size=8), seed=0)
    assert s.class_names == ("u", "v", "w") and len(s.train) == 12
    np.testing.assert_array_equal(s.train.images, x)
    np.savez(tmp_path / "b.npz", train_images=x, train_labels=y, test_images=x[:2],
             test_labels=np.array([0, 3]), class_names=np.array(["u", "v", "w"]))
    with pytest.raises(ValueError, match=r"b\.npz \(test labels\).*out of range"):
        data.load_splits(dict(source="npz", path=str(tmp_path / "b.npz"), image_size=8), seed=0)
    np.savez(tmp_path / "c.npz", x_train=x, y_train=y, x_test=x, y_test=np.array([None] * 12))
    with pytest.raises(ValueError, match=r"c\.npz.*pickle"):
        data.load_splits(dict(source="npz", path=str(tmp_path / "c.npz"), image_size=8), seed=0)
    r = data.load_splits(dict(source="npz", path=str(tmp_path / "a.npz"), image_size=4), seed=0)
    assert r.train.images.shape == (12, 4, 4, 3)


# -- new -------------------------------------------------------------------------------------

def test_grey_images_default_class_names_and_coarse_labels(tmp_path):
    x = np.arange(5 * 4 * 4, dtype=np.uint8).reshape(5, 4, 4)       # [N, H, W]: one channel
    np.savez(tmp_path / "g.npz", x_train=x, y_train=np.array([0, 1, 2, 0, 1]),
             x_test=x[:2], y_test=np.array([[2], [0]]),
             train_coarse_labels=np.array([0, 0, 1, 0, 0]), test_coarse_labels=np.array([1, 0]))
    raw = arrays.load(str(tmp_path / "g.npz"))
    assert raw.train.images.shape == (5, 4, 4, 1) and raw.class_names == ("0", "1", "2")
    np.testing.assert_array_equal(raw.test.labels, [2, 0])
    assert raw.test.labels.dtype == np.int32
    np.testing.assert_array_equal(raw.train.coarse_labels, [0, 0, 1, 0, 0])
    assert raw.coarse_class_names is None and raw.origin.startswith("npz ")


def test_missing_keys_shapes_and_files_are_named(tmp_path):
    x = np.zeros((3, 4, 4, 3), np.uint8)
    np.savez(tmp_path / "k.npz", images=x, labels=np.zeros(3, int))
    with pytest.raises(ValueError, match=r"expected arrays .*found \['images', 'labels'\]"):
        arrays.load(str(tmp_path / "k.npz"))
    np.savez(tmp_path / "f.npz", x_train=x.astype(np.float32), y_train=np.zeros(3, int),
             x_test=x, y_test=np.zeros(3, int))
    with pytest.raises(ValueError, match=r"'x_train' must be uint8\[N, H, W, C\].*float32"):
        arrays.load(str(tmp_path / "f.npz"))
    np.savez(tmp_path / "n.npz", x_train=x, y_train=np.zeros(2, int), x_test=x,
             y_test=np.zeros(3, int))
    with pytest.raises(ValueError, match=r"'y_train' must be integer labels of shape \[3\]"):
        arrays.load(str(tmp_path / "n.npz"))
    np.savez(tmp_path / "s.npz", x_train=x, y_train=np.zeros(3, int),
             x_test=np.zeros((3, 8, 8, 3), np.uint8), y_test=np.zeros(3, int))
    with pytest.raises(ValueError, match=r"train images \(4, 4, 3\) and test images"):
        arrays.load(str(tmp_path / "s.npz"))
    with pytest.raises(FileNotFoundError, match="config.data.path: no .npz file"):
        arrays.load(str(tmp_path / "absent.npz"))
