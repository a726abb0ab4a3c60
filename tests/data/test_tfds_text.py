"""jaxkd.data.tfds_text: TFDS text data sets as token streams (`data.source='tfds_text'`),
by hand, under `tfds.testing.mock_data`, prepared for real on disk (offline, without
TensorFlow), and through the engine."""
import collections

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxkd import data
from jaxkd import run as run_lib
from jaxkd.data import tfds_text
from jaxkd.data.text import EOS
from tests import tfds_fixtures
from tests.helpers import set_fields
from tests.test_configs import load


def test_lines_become_words_then_eos_and_blank_lines_vanish():
    assert tfds_text.words_of_texts([b"the cat\n\n sat  down \n", "a b"]) == [
        "the", "cat", EOS, "sat", "down", EOS, "a", "b", EOS]


def test_the_vocabulary_keeps_the_most_frequent_words_and_folds_the_rest_into_unk():
    words = "a a a a b b b c c d <unk>".split()
    assert tfds_text.capped_vocabulary(words, 0) == ("a", "b", "c", "<unk>", "d")
    # 3 entries: a, b, and <unk> for c, c, d and the <unk> itself (4): <unk> first
    assert tfds_text.capped_vocabulary(words, 3) == ("<unk>", "a", "b")
    vocab = ("a", "<unk>", "b")
    np.testing.assert_array_equal(tfds_text.ids_of("a z b".split(), vocab), [0, 1, 2])


def test_mock_data_sets_with_and_without_a_validation_split():
    """tiny_shakespeare has a validation split (the held-out one); lm1b has none, so the
    last 5% of its training examples are held out of train."""
    with tfds.testing.mock_data(num_examples=40):
        shake = data.load_splits(dict(source="tfds_text", name="tiny_shakespeare", bptt=4),
                                 seed=0)
        lm1b = data.load_splits(dict(source="tfds_text", name="lm1b", bptt=4), seed=0)
        source = tfds.data_source("lm1b", split="train")
        texts = [source[i]["text"] for i in range(len(source))]
    want = tfds_text.words_of_texts(texts[:38])               # 40 - round(0.05 * 40)
    assert [lm1b.class_names[i] for i in lm1b.train] == want
    vocab = set(lm1b.class_names)     # held-out words the training split lacks: <unk>
    assert [lm1b.class_names[i] for i in lm1b.heldout] == [
        w if w in vocab else "<unk>" for w in tfds_text.words_of_texts(texts[38:])]
    counts = collections.Counter(want)
    assert [counts[w] for w in lm1b.class_names if w in counts] == sorted(
        counts.values(), reverse=True)
    assert len(shake.heldout) > 0 and shake.origin == "tfds tiny_shakespeare"
    assert shake.image_shape == (4,)


def test_a_text_data_set_prepared_for_real(tmp_path):
    splits = data.load_splits(dict(source="tfds_text", name="jaxkd_tiny_text",
                                   data_dir=str(tmp_path), bptt=3), seed=0)
    assert (tmp_path / "jaxkd_tiny_text" / "1.0.0").is_dir()     # array_record on disk
    words = lambda ids: [splits.class_names[i] for i in ids]

    def sentences(ids):
        return " ".join(words(ids)).split(f" {EOS}")[:-1]
    seen = [s.strip() for s in sentences(splits.train) + sentences(splits.heldout)]
    assert sorted(seen) == sorted(tfds_fixtures.TEXT_TRAIN)       # TFDS shuffles records
    assert len(sentences(splits.heldout)) == 1                    # 5% of 20
    assert splits.class_names[:2] == (EOS, "the")
    # every animal and verb is in several training sentences, so whichever one is held
    # out the vocabulary is the same; 'a', 'zebra' and 'end' are not in it
    assert len(splits.class_names) == 1 + 1 + 5 + 4 + 1
    assert sorted(s.strip() for s in sentences(splits.test)) == [
        "<unk> <unk> sat", "the <unk>", "the cat ran"]


def test_bad_fields_are_named(tmp_path):
    with tfds.testing.mock_data(num_examples=8):
        with pytest.raises(ValueError, match="config.data.text_key='words'"):
            data.load_splits(dict(source="tfds_text", name="lm1b", text_key="words"), seed=0)
        with pytest.raises(ValueError, match="config.data.name='no_such_text'"):
            data.load_splits(dict(source="tfds_text", name="no_such_text"), seed=0)
    with pytest.raises(ValueError, match="config.data.vocab_size must be 0"):
        data.load_splits(dict(source="tfds_text", name="lm1b", vocab_size=1), seed=0)


def test_a_language_model_trains_on_a_tfds_text_data_set(tmp_path):
    cfg = set_fields(load("ban_lstm_ptb"), **{
        "data.source": "tfds_text", "data.name": "lm1b", "data.bptt": 5,
        "model_overrides.embed_dim": 8, "model_overrides.hidden_dim": 8, "generations": 0,
        "batch_size": 4, "eval_batch_size": 4, "num_epochs": 1, "progress_bar": False})
    with tfds.testing.mock_data(num_examples=60):
        results = run_lib.run(cfg, tmp_path / "w")
    phase = results["phases"][0]
    assert phase["last_perplexity"] > 1.0 and "last_heldout_perplexity" in phase
