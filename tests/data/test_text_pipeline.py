"""jaxkd.data.text_pipeline: contiguous BPTT windows, labels shifted, reset per epoch,
whole streams for evaluation, sharded over the mesh."""
import numpy as np
import pytest

from jaxkd.data import make_pipeline, text
from jaxkd.data.text_pipeline import TextPipeline, batchify
from jaxkd.engine import sharding


def splits(n=1000, bptt=5):
    ids = np.arange(n, dtype=np.int32) % 97
    names = tuple(f"w{i}" for i in range(96)) + ("<eos>",)
    return text.TextSplits(ids, ids[:203], ids[:101], names, bptt)


def test_batchify_cuts_contiguous_streams():
    np.testing.assert_array_equal(batchify(np.arange(10), 3), [[0, 1, 2], [3, 4, 5],
                                                               [6, 7, 8]])


def test_windows_read_each_stream_in_order_and_reset_once_an_epoch():
    mesh = sharding.make_mesh(4)
    p = make_pipeline(splits(), mesh=mesh, batch_size=8, eval_batch_size=4, augment_cfg={},
                      seed=0)
    assert isinstance(p, TextPipeline)
    streams = batchify(np.arange(1000) % 97, 8)            # 8 x 125
    assert p.steps_per_epoch == (125 - 1) // 5 and p.num_train == 8 * 24 * 5
    batches = list(p.train_batches(epoch=3))
    assert len(batches) == 24
    for i, b in enumerate(batches):
        x, y = np.asarray(b["image"]), np.asarray(b["label"])
        np.testing.assert_array_equal(x, streams[:, 5 * i:5 * i + 5])
        np.testing.assert_array_equal(y, streams[:, 5 * i + 1:5 * i + 6])
        assert np.asarray(b["reset"]).tolist() == [i == 0] * 8
        context = np.asarray(b["context"])       # the 5 tokens of the text before
        if i:
            np.testing.assert_array_equal(context, streams[:, 5 * i - 5:5 * i])
        else:
            np.testing.assert_array_equal(context[1:], streams[:-1, -5:])
            assert (context[0] == 96).all()      # '<eos>' (the last name here), no text
        assert b["image"].sharding.spec == sharding.batch_sharding(mesh).spec
    resumed = list(p.train_batches(epoch=3, start_step=22))
    np.testing.assert_array_equal(np.asarray(resumed[0]["image"]),
                                  np.asarray(batches[22]["image"]))


def test_evaluation_reads_every_stream_whole():
    p = TextPipeline(splits(), mesh=sharding.make_mesh(4), batch_size=8, eval_batch_size=4)
    (b,) = list(p.eval_batches("test"))                    # 203 tokens -> 4 x 50
    assert b["image"].shape == (4, 49) and np.asarray(b["mask"]).all()
    np.testing.assert_array_equal(np.asarray(b["label"])[:, :-1], np.asarray(b["image"])[:, 1:])
    assert p.num_eval("test") == 4 * 49 and p.eval_steps("test") == 1
    assert p.num_eval("heldout") == 4 * 24


def test_sizes_are_checked_with_the_field_named():
    with pytest.raises(ValueError, match="config.batch_size"):
        TextPipeline(splits(n=40), mesh=sharding.make_mesh(4), batch_size=8,
                     eval_batch_size=4)
    with pytest.raises(ValueError, match="config.eval_batch_size"):
        TextPipeline(splits(), mesh=sharding.make_mesh(4), batch_size=8, eval_batch_size=6)
