"""jaxkd.models.lstm: the LSTM language model of [BAN] Table 6 (Zaremba et al. 2014)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxkd.models import get_model, model_overrides

SMALL = dict(embed_dim=8, hidden_dim=8, num_layers=2, dropout=0.0, stream_batch=3)


def init(model, length=5):
    return model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)},
                      jnp.zeros((1, length)), train=False)


def tokens(shape, seed=0):
    return jax.random.randint(jax.random.key(seed), shape, 0, 20)


def test_defaults_are_bans_large_lstm_and_shapes():
    assert model_overrides("lstm_lm") == dict(embed_dim=1500, hidden_dim=1500, num_layers=1,
                                              dropout=0.65, tie_weights=True,
                                              stream_batch=32, init_scale=0.05)
    model = get_model("lstm_lm", num_classes=20, **SMALL)
    v = init(model)
    assert set(v["params"]) == {"embed", "head_bias", "lstm_0", "lstm_1"}   # tied softmax
    assert v["batch_stats"]["carry_1"]["h"].shape == (3, 8)
    logits, feats = model.apply(v, tokens((4, 6)), return_features=True)
    assert logits.shape == (4, 6, 20) and feats.shape == (4, 6, 8)
    assert logits.dtype == jnp.float32
    # tied: the logits are the features times the embedding, plus a bias
    want = feats @ v["params"]["embed"]["embedding"].T + v["params"]["head_bias"]
    np.testing.assert_allclose(logits, want, rtol=1e-5, atol=1e-6)
    untied = get_model("lstm_lm", num_classes=20, **dict(SMALL, tie_weights=False))
    assert "head" in init(untied)["params"]
    leaves = jax.tree_util.tree_leaves(v["params"])
    assert max(float(jnp.max(jnp.abs(x))) for x in leaves) <= 0.05   # U(-0.05, 0.05)


def test_two_carried_windows_equal_one_pass_over_both():
    """Truncated BPTT: training calls that carry the state across windows compute what
    one inference pass over the whole stream computes."""
    model = get_model("lstm_lm", num_classes=20, **SMALL)
    v = init(model)
    stream = tokens((3, 10), seed=3)
    whole = model.apply(v, stream)
    first, upd = model.apply(v, stream[:, :4], train=True, mutable=["batch_stats"])
    second, _ = model.apply({"params": v["params"], **upd}, stream[:, 4:], train=True,
                            mutable=["batch_stats"])
    np.testing.assert_allclose(jnp.concatenate([first, second], 1), whole, rtol=1e-4,
                               atol=1e-9)
    # inference ignores the stored state; a fresh zero state differs from a carried one
    np.testing.assert_allclose(model.apply({"params": v["params"], **upd}, stream[:, 4:]),
                               model.apply(v, stream[:, 4:]), rtol=1e-6)
    assert not np.allclose(second, model.apply(v, stream[:, 4:]), rtol=1e-2, atol=0)


def test_no_gradient_flows_into_the_carried_state():
    model = get_model("lstm_lm", num_classes=20, **SMALL)
    v = init(model)
    _, upd = model.apply(v, tokens((3, 4)), train=True, mutable=["batch_stats"])

    def loss(bs):
        out, _ = model.apply({"params": v["params"], "batch_stats": bs}, tokens((3, 4), 1),
                             train=True, mutable=["batch_stats"])
        return jnp.sum(out)
    grads = jax.grad(loss)(upd["batch_stats"])
    assert any(float(jnp.max(jnp.abs(g))) > 0 for g in jax.tree_util.tree_leaves(grads))

    def carried_only(bs):    # the new carry itself is stop-gradient
        _, new = model.apply({"params": v["params"], "batch_stats": bs}, tokens((3, 4), 1),
                             train=True, mutable=["batch_stats"])
        return sum(jnp.sum(x) for x in jax.tree_util.tree_leaves(new))
    assert all(float(jnp.max(jnp.abs(g))) == 0
               for g in jax.tree_util.tree_leaves(jax.grad(carried_only)(upd["batch_stats"])))


def test_bad_overrides_and_batches_name_the_field():
    with pytest.raises(ValueError, match="tie_weights needs embed_dim == hidden_dim"):
        get_model("lstm_lm", num_classes=5, **dict(SMALL, embed_dim=4))
    with pytest.raises(ValueError, match="model_overrides.dropout"):
        get_model("lstm_lm", num_classes=5, **dict(SMALL, dropout=1.0))
    model = get_model("lstm_lm", num_classes=20, **SMALL)
    with pytest.raises(ValueError, match="stream_batch=3 must equal the training batch"):
        model.apply(init(model), tokens((4, 5)), train=True, mutable=["batch_stats"])
