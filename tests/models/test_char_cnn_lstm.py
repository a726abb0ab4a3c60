"""jaxkd.models.char_cnn_lstm: [BAN] Table 6's CNN-LSTM (Kim et al. 2016, LSTM-Char-Large)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd.models import get_model, model_overrides
from jaxkd.models.char_cnn_lstm import END, PAD, START, CharWords, spelling
from jaxkd.models.lstm import uniform_init

WORDS = ("the", "cat", "<unk>", "<eos>", "sat", "a")
SMALL = dict(words=WORDS, char_dim=4, filter_widths=(1, 2), filters_per_width=3,
             highway_layers=1, hidden_dim=6, num_layers=2, dropout=0.0, stream_batch=3)


def init(model, length=4):
    return model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)},
                      jnp.zeros((1, length), jnp.int32), train=False)


def test_words_are_spelled_between_marks_with_special_words_one_character():
    table, num_chars = spelling(WORDS)
    # characters sorted after PAD, START, END: a=3 c=4 e=5 h=6 s=7 t=8; <unk>=9 <eos>=10
    assert table.tolist() == [
        [START, 8, 6, 5, END], [START, 4, 3, 8, END], [START, 9, END, PAD, PAD],
        [START, 10, END, PAD, PAD], [START, 7, 3, 8, END], [START, 3, END, PAD, PAD]]
    assert num_chars == 11
    assert spelling(WORDS, 0, 7)[0].shape == (6, 7)      # at least the widest filter
    with pytest.raises(ValueError, match="model_overrides.max_word_len=4"):
        spelling(WORDS, 4)


def test_defaults_are_kim_et_al_large_and_have_the_papers_19m_parameters():
    """Widths 1..7 with min(200, 50 w) filters (1 100), 2 highway layers, 2 x 650 LSTM:
    19.4M parameters with PTB's 10 000 words ([BAN] Table 6: 19M)."""
    o = model_overrides("cnn_lstm_lm")
    assert (o["char_dim"], o["filter_widths"], o["highway_layers"], o["hidden_dim"],
            o["num_layers"], o["dropout"]) == (15, (1, 2, 3, 4, 5, 6, 7), 2, 650, 2, 0.5)
    words = tuple(f"w{i}" for i in range(9998)) + ("<unk>", "<eos>")
    model = get_model("cnn_lstm_lm", num_classes=10000, words=words, stream_batch=2)
    shapes = jax.eval_shape(lambda: init(model))
    n = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(shapes["params"]))
    filters = sum(min(200, 50 * w) for w in range(1, 8))
    assert filters == 1100
    chars = 3 + 10 + 1 + 2                     # PAD/START/END, 'w', the digits, specials
    want = (chars * 15 + sum(15 * w * min(200, 50 * w) + min(200, 50 * w)
                             for w in range(1, 8))
            + 2 * 2 * (filters * filters + filters)
            + 4 * 650 * (filters + 650 + 1) + 4 * 650 * (650 + 650 + 1)
            + 650 * 10000 + 10000)
    assert n == want and 19.0e6 < n < 19.5e6


def test_word_vectors_by_hand_conv_tanh_max_then_highway():
    """One word through the character layers, computed with numpy from the parameters."""
    model = get_model("cnn_lstm_lm", num_classes=len(WORDS), **SMALL)
    v = init(model)
    p = jax.tree_util.tree_map(np.asarray, v["params"]["spell"])
    table, _ = spelling(WORDS, 0, 2)
    word = 1                                   # "cat"
    e = p["char_embed"]["embedding"][table[word]] * (table[word] != PAD)[:, None]
    pooled = []
    for w in (1, 2):
        k, b = p[f"conv_{w}"]["kernel"], p[f"conv_{w}"]["bias"]      # [w, dim, filters]
        out = np.stack([np.einsum("wd,wdf->f", e[i:i + w], k) + b
                        for i in range(len(e) - w + 1)])
        pooled.append(np.tanh(out).max(0))
    x = np.concatenate(pooled)
    h = p["highway_0"]
    gate = 1 / (1 + np.exp(-(x @ h["gate"]["kernel"] + h["gate"]["bias"])))
    transform = np.maximum(x @ h["transform"]["kernel"] + h["transform"]["bias"], 0)
    want = gate * transform + (1 - gate) * x
    spell = CharWords(11, 4, (1, 2), 3, 200, 1, uniform_init(0.05))
    got = spell.apply({"params": v["params"]["spell"]}, jnp.asarray(table[[word]]))
    np.testing.assert_allclose(np.asarray(got)[0], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(p["highway_0"]["gate"]["bias"], -2.0)   # carry first


def test_padding_characters_contribute_nothing():
    model = get_model("cnn_lstm_lm", num_classes=len(WORDS), **SMALL)
    v = init(model)
    tokens = jnp.array([[0, 2, 5, 3]])
    base = model.apply(v, tokens)
    params = jax.tree_util.tree_map(lambda x: x, v["params"])
    emb = params["spell"]["char_embed"]["embedding"]
    params["spell"]["char_embed"]["embedding"] = emb.at[PAD].set(9.0)
    np.testing.assert_array_equal(model.apply({**v, "params": params}, tokens), base)


def test_shapes_and_carried_windows_equal_one_pass():
    model = get_model("cnn_lstm_lm", num_classes=len(WORDS), **SMALL)
    v = init(model)
    assert v["batch_stats"]["carry_1"]["h"].shape == (3, 6)
    stream = jax.random.randint(jax.random.key(3), (3, 8), 0, len(WORDS))
    logits, feats = model.apply(v, stream, return_features=True)
    assert logits.shape == (3, 8, len(WORDS)) and feats.shape == (3, 8, 6)
    first, upd = model.apply(v, stream[:, :5], train=True, mutable=["batch_stats"])
    second, _ = model.apply({"params": v["params"], **upd}, stream[:, 5:], train=True,
                            mutable=["batch_stats"])
    np.testing.assert_allclose(jnp.concatenate([first, second], 1), logits, rtol=1e-4,
                               atol=1e-7)


def test_bad_overrides_name_the_field():
    with pytest.raises(ValueError, match="model_overrides.words must hold the vocabulary"):
        init(get_model("cnn_lstm_lm", num_classes=9, **SMALL))
    with pytest.raises(ValueError, match="model_overrides.filter_widths"):
        get_model("cnn_lstm_lm", num_classes=6, **dict(SMALL, filter_widths=(0, 2)))
    with pytest.raises(ValueError, match="model_overrides.dropout"):
        get_model("cnn_lstm_lm", num_classes=6, **dict(SMALL, dropout=1.0))
