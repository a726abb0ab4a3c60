"""jaxkd.data.text: PTB's file layout, the vocabulary, `<eos>` per line, the splits."""
import numpy as np
import pytest

from jaxkd.data import load_splits, text


def write_ptb(folder, train, valid, test):
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in (("ptb.train.txt", train), ("ptb.valid.txt", valid),
                       ("ptb.test.txt", test)):
        (folder / name).write_text(body)
    return folder


def test_vocabulary_is_most_frequent_first_with_eos_per_line(tmp_path):
    folder = write_ptb(tmp_path / "p", " b a b \n c b a \n", " a b \n", " c \n")
    s = text.load(str(folder), bptt=2)
    # counts: b 3, a 2, <eos> 2, c 1 -> ties by word: '<eos>' < 'a'
    assert s.class_names == ("b", "<eos>", "a", "c") and s.num_classes == 4
    np.testing.assert_array_equal(s.train, [0, 2, 0, 1, 3, 0, 2, 1])
    np.testing.assert_array_equal(s.heldout, [2, 0, 1])
    np.testing.assert_array_equal(s.test, [3, 1])
    assert s.image_shape == (2,) and s.train.dtype == np.int32
    assert s.split("heldout") is s.heldout


def test_errors_name_the_file_or_field(tmp_path):
    folder = write_ptb(tmp_path / "p", " a b \n", " a zebra \n", " a \n")
    with pytest.raises(ValueError, match=r"ptb\.valid\.txt: 1 word\(s\) not in the training "
                                         r"file's vocabulary, e\.g\. \['zebra'\]"):
        text.load(str(folder), bptt=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"config\.data\.path=.*empty.*no ptb\.train\.txt, "
                                         r"ptb\.valid\.txt, ptb\.test\.txt there"):
        text.load(str(tmp_path / "empty"), bptt=1)
    with pytest.raises(ValueError, match="config.data.path must be the folder"):
        text.load_source("ptb", "", 35)
    with pytest.raises(ValueError, match=r"ptb\.train\.txt: 4 tokens, fewer than "
                                         r"config\.data\.bptt=5"):
        text.load(str(write_ptb(tmp_path / "q", " a b c \n", " a \n", " a \n")), 5)


def test_load_splits_reads_the_bundled_text_sample():
    s = load_splits(dict(source="text_sample", bptt=35), seed=0)
    assert isinstance(s, text.TextSplits) and s.origin == "bundled text sample"
    assert 30_000 < len(s.train) < 40_000 and len(s.heldout) > 3_000 and len(s.test) > 3_000
    assert s.class_names[:2] == ("<eos>", "the") and s.num_classes < 100   # one per line
    with pytest.raises(ValueError, match="config.data.bptt"):
        load_splits(dict(source="text_sample", bptt=0), seed=0)
