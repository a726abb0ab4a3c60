"""The CIFAR binary archives: real CIFAR-100 (shared data, skipped when absent) and
synthetic CIFAR-10/100 archives and folders."""
import io
import os
import tarfile

import numpy as np
import pytest

from jaxkd import data
from jaxkd.data import cifar_binary

CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)


# -- real data -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cifar100(shared_data):
    cfg = dict(source="cifar_binary", path=str(shared_data / "cifar100/cifar-100-binary.tar.gz"),
               heldout_size=10000)
    return data.load_splits(cfg, seed=0)


def test_cifar100_binary_counts_classes_and_stats(cifar100):
    s = cifar100
    assert len(s.train) + len(s.heldout) == 50000 and len(s.test) == 10000
    full = np.concatenate([s.train.labels, s.heldout.labels])
    assert (np.bincount(full, minlength=100) == 500).all()
    assert (np.bincount(s.test.labels, minlength=100) == 100).all()
    assert (np.bincount(s.heldout.labels, minlength=100) == 100).all(), "stratified heldout"
    assert s.num_classes == 100 and len(s.class_names) == 100 and len(s.coarse_class_names) == 20
    assert s.train.images.shape[1:] == (32, 32, 3) and s.train.images.dtype == np.uint8
    np.testing.assert_allclose(s.mean, CIFAR100_MEAN, atol=2e-3)
    np.testing.assert_allclose(s.std, CIFAR100_STD, atol=2e-3)


def test_cifar100_coarse_labels_follow_a_fine_to_coarse_map(cifar100):
    s = cifar100
    fine = np.concatenate([s.train.labels, s.heldout.labels, s.test.labels])
    coarse = np.concatenate([s.train.coarse_labels, s.heldout.coarse_labels,
                             s.test.coarse_labels])
    pairs = np.unique(np.stack([fine, coarse], 1), axis=0)
    assert len(pairs) == 100, "each fine class maps to exactly one coarse class"
    assert (np.bincount(pairs[:, 1], minlength=20) == 5).all(), "5 fine classes per coarse"
    assert s.class_names[pairs[0, 0]] == "apple"
    assert s.coarse_class_names[pairs[0, 1]] == "fruit_and_vegetables"


# -- synthetic archives ------------------------------------------------------------------------

def _records(labels, label_bytes, rng):
    labels = np.asarray(labels, np.uint8).reshape(len(labels), label_bytes)
    pixels = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    return np.concatenate([labels, pixels], 1).tobytes(), pixels


def _tar_gz(path, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def _cifar10_files(rng, n=4, bad_label=None):
    files, pixels = {}, {}
    for i in range(1, 6):
        labels = (np.arange(n) + i) % 10
        if bad_label is not None and i == 2:
            labels[0] = bad_label
        files[f"cifar-10-batches-bin/data_batch_{i}.bin"], pixels[i] = _records(labels, 1, rng)
    files["cifar-10-batches-bin/test_batch.bin"], pixels[0] = _records(np.arange(n), 1, rng)
    names = "\n".join(f"class{i}" for i in range(10)) + "\n\n"
    files["cifar-10-batches-bin/batches.meta.txt"] = names.encode()
    return files, pixels


def test_cifar10_binary_synthetic_archive(tmp_path):
    files, pixels = _cifar10_files(np.random.default_rng(0))
    s = data.load_splits(dict(source="cifar_binary",
                              path=str(_tar_gz(tmp_path / "c10.tar.gz", files))), seed=0)
    assert len(s.train) == 20 and len(s.test) == 4 and s.num_classes == 10
    assert s.class_names[3] == "class3" and s.coarse_class_names is None
    np.testing.assert_array_equal(s.train.labels[:4], [1, 2, 3, 4])
    red, green = pixels[1][0, :1024].reshape(32, 32), pixels[1][0, 1024:2048].reshape(32, 32)
    np.testing.assert_array_equal(s.train.images[0, ..., 0], red)
    np.testing.assert_array_equal(s.train.images[0, ..., 1], green)
    folder = tmp_path / "extracted"
    for name, payload in files.items():
        (folder / os.path.dirname(name)).mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(payload)
    t = data.load_splits(dict(source="cifar_binary", path=str(folder)), seed=0)
    np.testing.assert_array_equal(t.train.images, s.train.images)


def test_cifar_binary_wrong_record_size_names_the_file(tmp_path):
    files, _ = _cifar10_files(np.random.default_rng(0))
    files["cifar-10-batches-bin/data_batch_3.bin"] += b"\x00"
    path = _tar_gz(tmp_path / "c10.tar.gz", files)
    with pytest.raises(ValueError, match=r"data_batch_3\.bin.*3073-byte records"):
        data.load_splits(dict(source="cifar_binary", path=str(path)), seed=0)


def test_cifar_binary_label_out_of_range_names_the_file(tmp_path):
    files, _ = _cifar10_files(np.random.default_rng(0), bad_label=10)
    path = _tar_gz(tmp_path / "c10.tar.gz", files)
    with pytest.raises(ValueError, match=r"data_batch_2\.bin.*out of range"):
        data.load_splits(dict(source="cifar_binary", path=str(path)), seed=0)


def test_cifar100_binary_synthetic_coarse_label_key(tmp_path):
    rng = np.random.default_rng(1)
    train, _ = _records(np.stack([np.arange(6) % 20, np.arange(6) * 7], 1), 2, rng)
    test, _ = _records(np.array([[3, 99]]), 2, rng)
    path = _tar_gz(tmp_path / "c100.tar.gz", {"cifar-100-binary/train.bin": train,
                                               "cifar-100-binary/test.bin": test})
    s = cifar_binary.load(str(path), "coarse_label")
    np.testing.assert_array_equal(s.train.labels, np.arange(6))
    assert len(s.class_names) == 20


# -- new: the record format and the archive checks, unit by unit ------------------------------

def test_parse_records_splits_label_bytes_and_rgb_planes():
    pixels = np.arange(3072, dtype=np.int64) % 251           # plane-major: R, G, B
    record = np.concatenate([[7, 42], pixels]).astype(np.uint8).tobytes()
    labels, images = cifar_binary.parse_records(record * 2, "x.bin", 2)
    assert labels.shape == (2, 2) and images.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(labels[1], [7, 42])
    planes = pixels.astype(np.uint8).reshape(3, 32, 32)
    for channel in range(3):
        np.testing.assert_array_equal(images[0, ..., channel], planes[channel])
    assert images[0, 0, 1, 2] == pixels[2 * 1024 + 1]       # row 0, column 1, blue
    with pytest.raises(ValueError, match=r"x\.bin: 0 bytes .*3074-byte records"):
        cifar_binary.parse_records(b"", "x.bin", 2)


def test_the_folder_that_holds_the_extracted_archive_is_read_too(tmp_path):
    files, _ = _cifar10_files(np.random.default_rng(2))
    for name, payload in files.items():
        (tmp_path / "parent" / os.path.dirname(name)).mkdir(parents=True, exist_ok=True)
        (tmp_path / "parent" / name).write_bytes(payload)
    raw = cifar_binary.load(str(tmp_path / "parent"))
    assert len(raw.train) == 20 and raw.origin == "cifar-10-binary"


def test_archive_of_neither_version_and_missing_files_are_named(tmp_path):
    other = _tar_gz(tmp_path / "other.tar.gz", {"readme.txt": b"hello"})
    with pytest.raises(ValueError, match="neither the CIFAR-10 binary files"):
        cifar_binary.load(str(other))
    files, _ = _cifar10_files(np.random.default_rng(0))
    del files["cifar-10-batches-bin/data_batch_5.bin"]
    with pytest.raises(ValueError, match=r"lacks \['data_batch_5\.bin'\]"):
        cifar_binary.load(str(_tar_gz(tmp_path / "c10.tar.gz", files)))
    with pytest.raises(FileNotFoundError, match="config.data.path: no CIFAR binary"):
        cifar_binary.load(str(tmp_path / "nowhere.tar.gz"))
    (tmp_path / "plain.bin").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="neither a folder nor a tar archive"):
        cifar_binary.load(str(tmp_path / "plain.bin"))


def test_cifar10_refuses_coarse_labels_and_a_short_names_file(tmp_path):
    files, _ = _cifar10_files(np.random.default_rng(0))
    path = _tar_gz(tmp_path / "c10.tar.gz", files)
    with pytest.raises(ValueError, match="label_key='coarse_label' needs CIFAR-100"):
        cifar_binary.load(str(path), "coarse_label")
    files["cifar-10-batches-bin/batches.meta.txt"] = b"a\nb\n"
    short = _tar_gz(tmp_path / "short.tar.gz", files)
    with pytest.raises(ValueError, match=r"batches\.meta\.txt: expected 10 class names, found 2"):
        cifar_binary.load(str(short))
