"""The containers every source returns and the data config's field readers."""
import ml_collections
import numpy as np
import pytest

from jaxkd.config import default_config
from jaxkd.data import dataset
from jaxkd.data.dataset import ArrayDataset, Splits, StreamingDataset


def test_field_reads_dicts_config_dicts_and_none_with_defaults():
    assert dataset.field({"a": 1}, "a") == 1 and dataset.field({"a": 1}, "b", 7) == 7
    cfg = ml_collections.ConfigDict({"a": 2})
    assert dataset.field(cfg, "a") == 2 and dataset.field(cfg, "b", 8) == 8
    assert dataset.field(None, "a", 9) == 9
    defaults = default_config().data
    assert dataset.data_field({}, "image_size") == defaults.image_size
    assert dataset.data_field({"image_size": 16}, "image_size") == 16
    assert dataset.augment_field({}, "crop_padding") == defaults.augment.crop_padding


def test_validate_augment_names_each_field():
    dataset.validate_augment({})                          # the defaults are valid
    with pytest.raises(ValueError, match="config.data.augment.flip"):
        dataset.validate_augment({"flip": "yes"})
    with pytest.raises(ValueError, match="config.data.augment.crop_padding"):
        dataset.validate_augment({"crop_padding": 1.5})


def test_array_dataset_checks_its_arrays_and_subsets_in_order():
    images = np.arange(4 * 2 * 2 * 3, dtype=np.uint8).reshape(4, 2, 2, 3)
    d = ArrayDataset(images, np.array([3, 1, 2, 0]), np.array([1, 0, 1, 0]))
    assert len(d) == 4 and d.image_shape == (2, 2, 3)
    sub = d.subset(np.array([2, 0]))
    np.testing.assert_array_equal(sub.images, images[[2, 0]])
    np.testing.assert_array_equal(sub.labels, [2, 3])
    np.testing.assert_array_equal(sub.coarse_labels, [1, 1])
    assert ArrayDataset(images, np.zeros(4, int)).subset(np.array([1])).coarse_labels is None
    with pytest.raises(ValueError, match=r"images must be uint8\[N, H, W, C\], got float32"):
        ArrayDataset(images.astype(np.float32), np.zeros(4, int))
    with pytest.raises(ValueError, match=r"labels must be int\[4\], got shape \(3,\)"):
        ArrayDataset(images, np.zeros(3, int))


def test_streaming_dataset_subset_reads_through_the_view():
    calls = []

    def read(indices):
        calls.append(list(indices))
        return [(np.zeros((2, 2, 3), np.uint8), i) for i in indices]
    d = StreamingDataset(read, 10, "s", np.arange(10) * 2)
    view = d.subset([7, 3, 5])
    assert len(view) == 3 and view.name == "s"
    np.testing.assert_array_equal(view.labels, [14, 6, 10])
    assert [label for _, label in view.read([2, 0])] == [5, 7]
    assert calls == [[5, 7]]
    assert StreamingDataset(read, 3).subset([0]).labels is None


def test_splits_split_and_image_shape():
    train = ArrayDataset(np.zeros((2, 5, 5, 1), np.uint8), np.zeros(2, int))
    s = Splits(train, train, None, 1, ("x",), None, np.zeros(1), np.ones(1), image_size=5)
    assert not s.streaming and s.image_shape == (5, 5, 1) and s.split("test") is train
    with pytest.raises(ValueError, match="no heldout split: set config.data.heldout_size > 0"):
        s.split("heldout")
    with pytest.raises(ValueError, match="split"):
        s.split("valid")
    stream = StreamingDataset(lambda idx: [], 3)
    t = Splits(stream, stream, None, 1, ("x",), None, np.zeros(3), np.ones(3), image_size=7)
    assert t.streaming and t.image_shape == (7, 7, 3)


def test_check_labels_names_the_origin_and_the_range():
    dataset.check_labels(np.array([0, 2]), 3, "here")
    dataset.check_labels(np.array([], int), 3, "here")
    with pytest.raises(ValueError, match=r"here: coarse labels out of range: found values in "
                                         r"\[-1, 2\] but there are 3 classes \(valid labels "
                                         r"are 0\.\.2\)"):
        dataset.check_labels(np.array([-1, 2]), 3, "here", "coarse labels")


def test_data_unavailable_is_an_os_error():
    assert issubclass(dataset.DataUnavailableError, OSError)
