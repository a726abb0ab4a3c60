"""TFDS: feature handling under `tfds.testing.mock_data` (which replaces
`tfds.data_source`), and the real `tfds.data_source`, which prepares and reads array_record
files on disk, offline (the path that crashed in a fresh venv on the undeclared
`importlib_resources`), with its failures: a download that cannot reach the network, and a
first prepare that needs TensorFlow. The command line's exit code on such a failure is in
tests/test_main.py.
"""
import importlib.util

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import downloader

from jaxkd import data
from jaxkd.data import tfds_source
from jaxkd.data.dataset import DataUnavailableError
from tests import tfds_fixtures

# A proxy on a loopback port nothing listens on: every download is refused at once.
_OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}


@pytest.fixture
def offline(monkeypatch):
    for key, value in _OFFLINE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(downloader, "MAX_RETRIES", 0)   # TFDS backs off for ~200 s


# -- mocked, no TensorFlow, no network --------------------------------------------------------

def test_tfds_cifar100_fine_and_coarse_under_mock_data():
    with tfds.testing.mock_data(num_examples=24):
        fine = data.load_splits(dict(source="tfds", name="cifar100"), seed=0)
        coarse = data.load_splits(dict(source="tfds", name="cifar100",
                                       label_key="coarse_label"), seed=0)
        with pytest.raises(ValueError, match="config.data.name='no_such_dataset'"):
            data.load_splits(dict(source="tfds", name="no_such_dataset"), seed=0)
        with pytest.raises(ValueError, match="config.data.label_key='colour'"):
            data.load_splits(dict(source="tfds", name="cifar10", label_key="colour"), seed=0)
    assert fine.train.images.shape == (24, 32, 32, 3) and fine.num_classes == 100
    assert len(fine.class_names) == 100 and len(fine.coarse_class_names) == 20
    assert coarse.num_classes == 20
    np.testing.assert_array_equal(coarse.train.labels, fine.train.coarse_labels)


# -- for real, on disk ------------------------------------------------------------------------

def test_tfds_prepares_and_reads_a_data_set_for_real(tmp_path):
    splits = data.load_splits(dict(source="tfds", name="jaxkd_tiny_encoded",
                                   data_dir=str(tmp_path), image_size=tfds_fixtures.SIZE),
                              seed=0)
    assert (tmp_path / "jaxkd_tiny_encoded" / "1.0.0").is_dir()   # array_record on disk
    assert splits.class_names == tfds_fixtures.CLASSES and splits.num_classes == 3
    assert len(splits.train) == tfds_fixtures.TRAIN and len(splits.test) == tfds_fixtures.TEST
    order = np.argsort(splits.train.labels, kind="stable")     # TFDS shuffles the records
    expected = tfds_fixtures.expected_train_images()
    want = np.argsort(np.arange(tfds_fixtures.TRAIN) % 3, kind="stable")
    assert sorted(map(bytes, splits.train.images[order])) == \
        sorted(map(bytes, expected[want]))


def test_tfds_first_prepare_without_tensorflow_says_what_to_install(tmp_path):
    cfg = dict(source="tfds", name="jaxkd_tiny_arrays", data_dir=str(tmp_path), image_size=8)
    if importlib.util.find_spec("tensorflow") is not None:   # TF present: it just works
        assert data.load_splits(cfg, seed=0).num_classes == 3
        return
    with pytest.raises(DataUnavailableError, match="needs TensorFlow") as err:
        data.load_splits(cfg, seed=0)
    assert "pip install tensorflow-cpu" in str(err.value) and "\n" not in str(err.value)


def test_tfds_download_failure_is_one_line_naming_the_local_archive(tmp_path, offline):
    with pytest.raises(DataUnavailableError) as err:
        data.load_splits(dict(source="tfds", name="cifar100", data_dir=str(tmp_path)), seed=0)
    message = str(err.value)
    assert "\n" not in message and "'cifar100'" in message and str(tmp_path) in message
    assert "--config.data.source=cifar_binary" in message
    assert "cifar-100-binary.tar.gz" in message


# -- new: the source's decisions, unit by unit ------------------------------------------------

class _Split:
    def __init__(self, num_examples):
        self.num_examples = num_examples


class _Info:
    def __init__(self, splits):
        self.splits = splits


def test_streaming_auto_streams_above_four_gib_or_imagenet_by_name():
    small = _Info({"train": _Split(50_000)})
    big = _Info({"train": _Split(1_281_167)})
    assert not tfds_source._should_stream(small, "cifar100", "train", 32, "auto")
    # 1.28M images at 224x224x3 bytes is ~180 GiB; at 32x32 it is 3.7 GiB (in memory).
    assert tfds_source._should_stream(big, "imagenet2012", "train", 224, "auto")
    assert not tfds_source._should_stream(big, "imagenet2012", "train", 32, "auto")
    assert tfds_source._should_stream(_Info({}), "imagenet_v2", "train", 32, "auto")
    assert not tfds_source._should_stream(_Info({}), "mnist", "train", 32, "auto")
    assert tfds_source._should_stream(small, "cifar100", "train", 32, True)
    with pytest.raises(ValueError, match="config.data.streaming must be 'auto', True or "
                                         "False, got 'yes'"):
        tfds_source._should_stream(small, "cifar100", "train", 32, "yes")


def test_test_split_defaults_and_local_hints():
    assert tfds_source._test_split(_Info({"train": 1, "test": 1}), "cifar10", "") == "test"
    assert tfds_source._test_split(_Info({"train": 1, "validation": 1}), "food", "") == \
        "validation"
    assert tfds_source._test_split(_Info({"test": 1}), "imagenet2012", "") == "validation"
    assert tfds_source._test_split(_Info({"test": 1}), "x", "test[:10]") == "test[:10]"
    assert "cifar-10-binary.tar.gz" in tfds_source._local_hint("cifar10")
    assert "image_folder" in tfds_source._local_hint("mnist")


def test_needs_tensorflow_follows_the_exception_chain():
    try:
        try:
            raise ModuleNotFoundError("No module named 'tensorflow'")
        except ModuleNotFoundError as inner:
            raise RuntimeError("prepare failed") from inner
    except RuntimeError as err:
        assert tfds_source._needs_tensorflow(err)
    assert not tfds_source._needs_tensorflow(RuntimeError("No module named 'torch'"))
    assert not tfds_source._needs_tensorflow(None)
