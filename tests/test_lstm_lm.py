"""[BAN] Table 6 end to end: a born-again LSTM language model (BAN+L, two generations)
on the bundled text, through the real engine, plan, checkpoints and resume."""
import json
import math

import jax
import numpy as np
import pytest

from jaxkd import plateau
from jaxkd import run as run_lib
from jaxkd import workdir as workdir_lib
from jaxkd.data import load_splits
from jaxkd.engine.writer import read_records
from jaxkd.report.report import (format_results, load_plan, phase_records, read_metrics,
                                 workdir_report)
from jaxkd.workspace import Workspace
from tests.helpers import crash_after, set_fields
from tests.test_configs import load

SMALL = {"data.source": "text_sample", "model_overrides.embed_dim": 32,
         "model_overrides.hidden_dim": 32, "model_overrides.dropout": 0.1,
         "batch_size": 16, "eval_batch_size": 8, "data.bptt": 20, "num_epochs": 2,
         "progress_bar": False, "log_every_steps": 10, "schedule.base_lr": 20.0}


def config(**changes):
    return set_fields(load("ban_lstm_ptb"), **{**SMALL, **changes})


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("lm") / "w"
    return workdir, run_lib.run(config(), workdir)


def unigram_perplexity(splits) -> float:
    """The perplexity of the training unigram distribution on the test split."""
    counts = np.bincount(splits.train, minlength=splits.num_classes) + 1.0
    logp = np.log(counts / counts.sum())
    return float(np.exp(-logp[splits.test].mean()))


def test_two_generations_train_and_report_perplexity(finished):
    workdir, results = finished
    assert [p["name"] for p in results["phases"]] == ["gen0", "gen1"]
    splits = load_splits(dict(source="text_sample", bptt=20), seed=0)
    evals = [r for _, r in read_records(workdir_lib.metrics_path(workdir))
             if r["kind"] == "eval"]
    for phase in results["phases"]:
        assert phase["last_perplexity"] == pytest.approx(math.exp(phase["last_loss"]))
        mine = [r for r in evals if r["phase"] == phase["name"]]
        assert phase["best_perplexity"] == pytest.approx(min(math.exp(r["loss"]) for r in mine))
        # learned the grammar's order, not only word frequencies
        assert phase["last_perplexity"] < 0.6 * unigram_perplexity(splits)
    # the test split's tokens, each predicted once (8 streams read whole)
    assert evals[-1]["count"] == 8 * (len(splits.test) // 8 - 1)
    train = [r for _, r in read_records(workdir_lib.metrics_path(workdir))
             if r["kind"] == "train" and r["phase"] == "gen1"]
    assert {"loss_ce", "loss_kd"} <= set(train[0])      # BAN+L: label and teacher terms
    # [BAN]'s adaptive rate: the validation split evaluated after every epoch
    heldout = [r for _, r in read_records(workdir_lib.metrics_path(workdir))
               if r["kind"] == "heldout"]
    assert [(r["phase"], r["epoch"]) for r in heldout] == [
        ("gen0", 1), ("gen0", 2), ("gen1", 1), ("gen1", 2)]
    assert heldout[0]["count"] == 8 * (len(splits.heldout) // 8 - 1)
    for phase in results["phases"]:
        mine = [math.exp(r["loss"]) for r in heldout if r["phase"] == phase["name"]]
        assert phase["last_heldout_perplexity"] == pytest.approx(mine[-1])
        assert phase["best_heldout_perplexity"] == pytest.approx(min(mine))
    table = format_results(results).splitlines()
    assert table[0].split()[-4:] == ["val", "perplexity", "last", "perplexity"]
    assert [float(r.split()[-1]) for r in table[1:]] == \
        [round(p["last_perplexity"], 2) for p in results["phases"]]
    assert [float(r.split()[-2]) for r in table[1:]] == \
        [round(p["last_heldout_perplexity"], 2) for p in results["phases"]]


def test_a_killed_run_resumes_bit_exactly(finished, tmp_path, monkeypatch):
    """Killed in generation 1's second epoch after its mid-phase checkpoint: the carried
    LSTM state and the plateau's scale and best perplexity are part of the checkpoint, so
    the resumed run equals the uninterrupted one bit for bit."""
    reference, _ = finished
    cfg = config(checkpoint_every_steps=20)
    ref_ws = Workspace.from_workdir(reference)
    spe = ref_ws.pipeline.steps_per_epoch
    crash_after(monkeypatch, 2 * spe + spe + 25)   # gen0's steps, then into gen1's epoch 2
    with pytest.raises(KeyboardInterrupt):
        run_lib.run(cfg, tmp_path / "w")
    assert any(workdir_lib.phase_dir(tmp_path / "w", "gen1").glob("ckpt/*"))
    monkeypatch.undo()
    run_lib.run(cfg, tmp_path / "w")
    mine = Workspace.from_workdir(tmp_path / "w")
    for i in range(2):
        a, b = (jax.device_get(ws.final_state(i)) for ws in (mine, ref_ws))
        assert float(plateau.scale_of(a.opt_state)) in (1.0, 0.25, 0.0625)
        for x, y in zip(jax.tree_util.tree_leaves((a.params, a.batch_stats, a.opt_state)),
                        jax.tree_util.tree_leaves((b.params, b.batch_stats, b.opt_state)),
                        strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    got = json.loads(workdir_lib.results_path(tmp_path / "w").read_text())
    want = json.loads(workdir_lib.results_path(reference).read_text())
    for key in ("last_perplexity", "last_heldout_perplexity", "best_heldout_perplexity"):
        assert [p[key] for p in got["phases"]] == [p[key] for p in want["phases"]]


def test_the_cnn_lstm_row_trains_through_the_same_engine(tmp_path):
    """[BAN] Table 6's ConvLSTM (configs/ban_cnn_lstm_ptb.py, small): the workspace gives
    the model its vocabulary to spell, both generations train on the same windows and
    their teacher-student loss has its two terms; the validation split drives the rate.
    A model this small (48 filters) starts slowly from Kim et al.'s U(-0.05, 0.05): its
    word vectors differ by ~1e-3 and it stays at the unigram perplexity for hundreds of
    steps, so the test widens the init to U(-0.2, 0.2)."""
    small = {"data.source": "text_sample", "model_overrides.char_dim": 8,
             "model_overrides.filter_widths": (1, 2, 3), "model_overrides.filters_per_width": 8,
             "model_overrides.highway_layers": 1, "model_overrides.hidden_dim": 32,
             "model_overrides.dropout": 0.1, "batch_size": 16, "eval_batch_size": 8,
             "data.bptt": 20, "num_epochs": 2, "progress_bar": False, "log_every_steps": 10,
             "schedule.base_lr": 20.0, "model_overrides.init_scale": 0.2}
    cfg = set_fields(load("ban_cnn_lstm_ptb"), **small)
    results = run_lib.run(cfg, tmp_path / "w")
    splits = load_splits(dict(source="text_sample", bptt=20), seed=0)
    records = [r for _, r in read_records(workdir_lib.metrics_path(tmp_path / "w"))]
    for phase in results["phases"]:
        assert phase["model"] == "cnn_lstm_lm"
        assert phase["last_perplexity"] < 0.6 * unigram_perplexity(splits)
        assert phase["last_heldout_perplexity"] > 1.0
    train = [r for r in records if r["kind"] == "train" and r["phase"] == "gen1"]
    assert {"loss_ce", "loss_kd"} <= set(train[0])
    assert [r["epoch"] for r in records if r["kind"] == "heldout"] == [1, 2, 1, 2]


def test_the_report_has_table_6s_perplexity_columns(finished, tmp_path):
    """report.md of a language-model run: validation and test perplexity per phase, from
    results.json, and the same numbers from metrics.jsonl alone (a run without results)."""
    workdir, results = finished
    text = workdir_report(workdir, evaluate=False).read_text()
    section = text[text.index("## Perplexity"):].split("\n\n")[1].splitlines()
    assert section[0].startswith("| phase | model | last val | best val | last test |")
    for line, phase in zip(section[2:], results["phases"], strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[:2] == [phase["name"], "lstm_lm"]
        assert [float(c) for c in cells[2:]] == [
            round(phase[k], 2) for k in ("last_heldout_perplexity", "best_heldout_perplexity",
                                         "last_perplexity", "best_perplexity")]
    metrics = read_metrics(workdir)
    again = phase_records(tmp_path, metrics, load_plan(workdir))   # no results.json there
    assert [r["last_heldout_perplexity"] for r in again] == pytest.approx(
        [p["last_heldout_perplexity"] for p in results["phases"]])
