"""The official CIFAR "binary version" archives, as downloaded by hand.

CIFAR-10 (`cifar-10-binary.tar.gz`): `data_batch_1.bin` .. `data_batch_5.bin` and
`test_batch.bin`, records of 1 label byte + 3072 pixel bytes, class names in
`batches.meta.txt`. CIFAR-100 (`cifar-100-binary.tar.gz`): `train.bin` and `test.bin`,
records of a coarse label byte, a fine label byte and 3072 pixel bytes, names in
`fine_label_names.txt` and `coarse_label_names.txt`. Pixels are 1024 red, 1024 green and
1024 blue bytes, each plane 32x32 row-major.

The path may be the `.tar.gz` (read as a stream: one pass, no extraction), the extracted
folder, or the folder that holds it.
"""

from __future__ import annotations

import os
import re
import tarfile

import numpy as np

from jaxkd.data.dataset import ArrayDataset, RawData, check, check_labels

PIXELS = 32 * 32 * 3
CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST = "test_batch.bin"
CIFAR100_TRAIN, CIFAR100_TEST = "train.bin", "test.bin"
_NAME_FILES = ("batches.meta.txt", "fine_label_names.txt", "coarse_label_names.txt")
_WANTED = set(CIFAR10_TRAIN) | {CIFAR10_TEST, CIFAR100_TRAIN, CIFAR100_TEST} | set(_NAME_FILES)


def _read_tar(path: str) -> dict[str, tuple[str, bytes]]:
    """Reads the wanted members of a (compressed) tar in one streaming pass."""
    files = {}
    with tarfile.open(path, mode="r|*") as archive:
        for member in archive:
            base = os.path.basename(member.name)
            if member.isfile() and base in _WANTED:
                files[base] = (f"{path}:{member.name}", archive.extractfile(member).read())
    return files


def _read_folder(path: str) -> dict[str, tuple[str, bytes]]:
    """Reads the wanted files of an extracted archive (the folder or its parent)."""
    files = {}
    for root, dirs, names in os.walk(path):
        dirs.sort()
        if os.path.relpath(root, path).count(os.sep) >= 2:
            continue
        for base in names:
            if base in _WANTED and base not in files:
                full = os.path.join(root, base)
                with open(full, "rb") as f:
                    files[base] = (full, f.read())
    return files


def read_files(path: str) -> dict[str, tuple[str, bytes]]:
    """Maps each CIFAR file name found under `path` to (where it was read, its bytes)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"config.data.path: no CIFAR binary archive or folder at {path!r}")
    if os.path.isdir(path):
        return _read_folder(path)
    check(tarfile.is_tarfile(path),
          f"config.data.path: {path} is neither a folder nor a tar archive of the CIFAR "
          "binary version")
    return _read_tar(path)


def parse_records(data: bytes, where: str, num_label_bytes: int):
    """Splits CIFAR records into labels uint8[N, num_label_bytes] and images uint8[N,32,32,3].

    Raises:
        ValueError naming `where` when the size is not a whole number of records.
    """
    record = num_label_bytes + PIXELS
    check(len(data) > 0 and len(data) % record == 0,
          f"{where}: {len(data)} bytes is not a whole number of {record}-byte records "
          f"({num_label_bytes} label byte(s) + {PIXELS} pixel bytes); is this the right "
          "CIFAR version and an intact file?")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
    labels = records[:, :num_label_bytes]
    planes = records[:, num_label_bytes:].reshape(-1, 3, 32, 32)
    return labels, np.ascontiguousarray(planes.transpose(0, 2, 3, 1))


def _names(files, name: str, count: int) -> tuple[str, ...]:
    """Class names from a names file (one per line), or '0'..'count-1' when absent."""
    if name not in files:
        return tuple(str(i) for i in range(count))
    where, data = files[name]
    names = tuple(line.strip() for line in data.decode("utf-8").splitlines() if line.strip())
    check(len(names) == count, f"{where}: expected {count} class names, found {len(names)}")
    return names


def _cifar10(files, label_key: str) -> RawData:
    check(label_key == "label", "config.data.label_key='coarse_label' needs CIFAR-100; "
          "the CIFAR-10 binary archive has one label per image")
    missing = [n for n in CIFAR10_TRAIN + (CIFAR10_TEST,) if n not in files]
    check(not missing, f"config.data.path: CIFAR-10 binary archive lacks {missing}")
    splits = []
    for names in (CIFAR10_TRAIN, (CIFAR10_TEST,)):
        images, labels = [], []
        for name in names:
            where, data = files[name]
            label, image = parse_records(data, where, 1)
            check_labels(label[:, 0], 10, where)
            images.append(image)
            labels.append(label[:, 0].astype(np.int32))
        splits.append(ArrayDataset(np.concatenate(images), np.concatenate(labels)))
    return RawData(splits[0], splits[1], _names(files, "batches.meta.txt", 10), None,
                   origin="cifar-10-binary")


def _cifar100(files, label_key: str) -> RawData:
    missing = [n for n in (CIFAR100_TRAIN, CIFAR100_TEST) if n not in files]
    check(not missing, f"config.data.path: CIFAR-100 binary archive lacks {missing}")
    splits = []
    for name in (CIFAR100_TRAIN, CIFAR100_TEST):
        where, data = files[name]
        label, images = parse_records(data, where, 2)
        coarse, fine = label[:, 0].astype(np.int32), label[:, 1].astype(np.int32)
        check_labels(coarse, 20, where, "coarse labels")
        check_labels(fine, 100, where, "fine labels")
        target = coarse if label_key == "coarse_label" else fine
        splits.append(ArrayDataset(images, target, coarse))
    fine_names = _names(files, "fine_label_names.txt", 100)
    coarse_names = _names(files, "coarse_label_names.txt", 20)
    names = coarse_names if label_key == "coarse_label" else fine_names
    return RawData(splits[0], splits[1], names, coarse_names, origin="cifar-100-binary")


def load(path: str, label_key: str = "label") -> RawData:
    """Reads a CIFAR-10 or CIFAR-100 binary archive, telling which from its file names.

    Args:
        path: the `.tar.gz`, the extracted folder, or the folder holding it.
        label_key: 'label' (fine) or 'coarse_label' (CIFAR-100 superclasses).

    Returns:
        RawData with the official train and test splits; for CIFAR-100 the coarse labels
        and superclass names are filled in.
    """
    files = read_files(path)
    if CIFAR100_TRAIN in files or CIFAR100_TEST in files:
        return _cifar100(files, label_key)
    if any(re.fullmatch(r"(data|test)_batch(_\d)?\.bin", n) for n in files):
        return _cifar10(files, label_key)
    raise ValueError(f"config.data.path: {path} holds neither the CIFAR-10 binary files "
                     f"({CIFAR10_TEST}, data_batch_*.bin) nor the CIFAR-100 ones "
                     f"({CIFAR100_TRAIN}, {CIFAR100_TEST})")
