"""jaxkd.data.make_text_sample: the bundled text sample is what the generator writes."""
import filecmp

from jaxkd.data import make_text_sample, text


def test_the_bundled_sample_is_what_make_text_sample_writes(tmp_path):
    paths = make_text_sample.write(str(tmp_path))
    for split, path in paths.items():
        assert filecmp.cmp(path, f"{text.SAMPLE_DIR}/ptb.{split}.txt", shallow=False)


def test_sentences_follow_the_grammar():
    import numpy as np
    rng = np.random.default_rng(1)
    for _ in range(50):
        words = make_text_sample.sentence(rng)
        assert words[0] in make_text_sample.WORDS["det"]
        assert any(w in make_text_sample.WORDS["noun"] for w in words)
