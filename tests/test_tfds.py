"""TFDS for real: `tfds.data_source` prepares and reads array_record files on disk, offline.

`tests/test_data.py` covers the TFDS feature handling under `tfds.testing.mock_data`, which
replaces `tfds.data_source`; these tests run the real one (the path that crashed in a fresh
venv on the undeclared `importlib_resources`), and its failures: a download that cannot reach
the network, and a first prepare that needs TensorFlow.
"""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
from tensorflow_datasets.core.download import downloader

from jaxkd import data
from jaxkd.data.dataset import DataUnavailableError
from tests import tfds_fixtures
from tests.conftest import REPO

# A proxy on a loopback port nothing listens on: every download is refused at once.
_OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
            "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}


@pytest.fixture
def offline(monkeypatch):
    for key, value in _OFFLINE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(downloader, "MAX_RETRIES", 0)   # TFDS backs off for ~200 s


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


def test_cli_paper_config_without_network_exits_5_with_one_line(tmp_path):
    """The mission's command shape on its TFDS default, offline: no traceback, exit 5."""
    program = ("import sys; from tensorflow_datasets.core.download import downloader; "
               "downloader.MAX_RETRIES = 0; from jaxkd import main; "
               "sys.argv[0] = 'jaxkd'; main.run_main()")
    args = [sys.executable, "-c", program, "--config=configs/sd_resnet56.py",
            f"--workdir={tmp_path / 'w'}", f"--config.data.data_dir={tmp_path / 'tfds'}",
            "--config.progress_bar=False"]
    env = dict(os.environ, **_OFFLINE)
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 5, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "TFDS could not download or prepare 'cifar100'" in proc.stderr
    assert "--config.data.source=cifar_binary" in proc.stderr
