"""jaxkd.analysis.evaluate: a sd_workdir's finished phases on a split (the tiny
snapshot-distillation run of `tests.shared_runs`), and the statistics of [TT] over them
(`phase_statistics`, `teacher_agreement`, `semantic_distance_table`,
`summarize_evaluations`) on hand-made evaluations."""

import math

import numpy as np
import pytest

from jaxkd import analysis, plans
from jaxkd.config import default_config
from tests.analysis.test_stats import _features_at_angles, _logits_of


def test_evaluate_workdir_matches_the_run(sd_workdir, sd_evaluation):
    results = analysis.load_results(sd_workdir)
    assert sd_evaluation.names == ["cycle1", "cycle2"]
    assert sd_evaluation.logits["cycle1"].shape == (1000, 10)
    assert sd_evaluation.features["cycle2"].shape[0] == 1000
    for phase in results["phases"]:   # the final checkpoint is the last evaluated state
        acc = analysis.accuracy(sd_evaluation.logits[phase["name"]], sd_evaluation.labels)
        assert acc == pytest.approx(phase["last_top1"], abs=1e-9)
    scales = analysis.sd_ensemble_scales(2.0, 2)
    sd = analysis.ensemble_of(sd_evaluation.logits, sd_evaluation.labels, ["cycle1", "cycle2"],
                              scales)
    assert sd["top1"] == pytest.approx(results["ensembles"]["sd_ensemble"]["top1"])
    # Only the run wrote TensorBoard events: evaluating (report, fixture) wrote none.
    assert len(list((sd_workdir / "tensorboard").glob("events*"))) == 1


def test_evaluate_workdir_leaves_out_unfinished_phases_and_skips_features(sd_workdir, tmp_path):
    import shutil
    copy = tmp_path / "run"
    shutil.copytree(sd_workdir, copy)
    shutil.rmtree(copy / "phases" / "cycle2" / "final")
    ev = analysis.evaluate_workdir(copy, "train")
    assert ev.names == ["cycle1"] and ev.features is None and ev.split == "train"
    assert ev.logits["cycle1"].shape == (160, 10) and ev.labels.shape == (160,)
    # CIFAR-10 has no superclasses: the two-group stand-in, and it says so.
    assert "vehicles / animals" in ev.coarse_source
    assert set(np.unique(ev.coarse_labels)) == {0, 1}


def _sd_plan():
    c = default_config()
    c.method, c.num_epochs, c.snapshot.cycles = "snapshot_distillation", 4, 2
    return plans.build(c)


def _hand_made(split="test"):
    """cycle1 right on 3 of 4 samples, cycle2 on all 4; 4 classes."""
    plan = _sd_plan()
    labels = np.array([0, 1, 2, 3])
    cycle1 = _logits_of([[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1],
                         [0.1, 0.1, 0.7, 0.1], [0.7, 0.1, 0.1, 0.1]])
    cycle2 = _logits_of([[0.4, 0.3, 0.2, 0.1], [0.1, 0.4, 0.3, 0.2],
                         [0.1, 0.2, 0.4, 0.3], [0.3, 0.2, 0.1, 0.4]])
    feats, _, coarse = _features_at_angles(0.3, 0.5)
    return analysis.Evaluation(split, plan, {"cycle1": cycle1, "cycle2": cycle2},
                               {"cycle1": feats[::2], "cycle2": feats[1::2]}, labels,
                               coarse[::2], "hand-made", ("a", "b", "c", "d"))


def test_phase_statistics_of_test_and_train():
    test, train = _hand_made("test"), _hand_made("train")
    stats = analysis.phase_statistics(test, train)
    assert set(stats) == {"cycle1", "cycle2"}
    assert stats["cycle1"]["test_top1"] == 0.75 and stats["cycle2"]["train_top1"] == 1.0
    np.testing.assert_allclose(stats["cycle2"]["test_confidences"], [0.4, 0.3, 0.2, 0.1])
    assert set(stats["cycle1"]) == {f"{s}_{k}" for s in ("train", "test")
                                    for k in ("top1", "confidences", "ece")}
    # cycle2: every confidence 0.4, every answer right: |1.0 - 0.4| in one bin.
    assert stats["cycle2"]["test_ece"] == pytest.approx(0.6)
    assert "train_top1" not in analysis.phase_statistics(test)["cycle1"]


def test_teacher_agreement_of_a_continued_phase():
    ev = _hand_made()
    (row,) = analysis.teacher_agreement(ev)
    assert (row["student"], row["teacher"]) == ("cycle2", "cycle1")
    assert row["top1_agreement"] == 0.75                    # sample 3: 3 vs 0
    assert row["second_class_agreement"] == 0.25            # runner-ups: 1,0,0,1 vs 1,2,3,0
    expected = np.mean([np.sum(p * np.log(p / q)) for p, q in zip(
        analysis.softmax(ev.logits["cycle1"]), analysis.softmax(ev.logits["cycle2"]))])
    assert row["mean_kl"] == pytest.approx(expected)


def test_teacher_agreement_skips_teachers_it_has_no_logits_of():
    ev = _hand_made()
    del ev.logits["cycle1"]
    assert analysis.teacher_agreement(ev) == []


def test_semantic_distance_table_needs_features_and_superclasses():
    ev = _hand_made()
    table = analysis.semantic_distance_table(ev)
    assert set(table) == {"cycle1", "cycle2"}
    # Features at angles +-0.3 and pi/2 +- 0.5 around the superclass means ([TT] Eqn 4).
    assert table["cycle1"]["dist_c"] == pytest.approx(0.4)
    assert table["cycle2"]["dist_s"] == pytest.approx(math.pi / 4)
    ev.coarse_labels = None
    assert analysis.semantic_distance_table(ev) == {}


def test_summarize_evaluations_is_the_analysis_json():
    test, train = _hand_made("test"), _hand_made("train")
    out = analysis.summarize_evaluations(test, train)
    assert set(out) == {"phases", "agreement", "ensembles", "distances", "coarse_source",
                        "num_test", "num_train"}
    assert (out["num_test"], out["num_train"], out["coarse_source"]) == (4, 4, "hand-made")
    assert set(out["distances"]) == {"train", "test"}
    assert list(out["ensembles"]) == ["snapshot_ensemble[cycle1..cycle2]",
                                      "sd_ensemble[cycle1..cycle2]"]
    assert analysis.summarize_evaluations(test)["num_train"] == 0
