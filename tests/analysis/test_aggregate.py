"""jaxkd.analysis.aggregate: several runs' results.json, mean ± sample std per phase and
ensemble (matched by name)."""

import json
import math

import pytest

from jaxkd import analysis


def test_mean_std_uses_the_sample_std():
    out = analysis.mean_std([0.5, 0.7])
    assert out["mean"] == pytest.approx(0.6) and out["n"] == 2
    assert out["std"] == pytest.approx(math.sqrt(0.02))
    assert analysis.mean_std([0.4]) == {"mean": 0.4, "std": 0.0, "n": 1}


def test_aggregate_results_over_runs():
    run_a = {"phases": [{"name": "gen0", "best_top1": 0.70, "last_top1": 0.68},
                        {"name": "gen1", "best_top1": 0.72, "last_top1": 0.71}],
             "ensembles": {"bane": {"top1": 0.75, "top5": 0.9}}}
    run_b = {"phases": [{"name": "gen0", "best_top1": 0.74, "last_top1": 0.70}],
             "ensembles": {"bane": {"top1": 0.77, "top5": 0.92}}}
    agg = analysis.aggregate_results([run_a, run_b])
    assert agg["runs"] == 2
    gen0 = agg["phases"]["gen0"]
    assert gen0["best_top1"]["mean"] == pytest.approx(0.72)
    assert gen0["best_top1"]["std"] == pytest.approx(math.sqrt(0.0008))
    assert gen0["last_top1"]["mean"] == pytest.approx(0.69)
    assert agg["phases"]["gen1"]["best_top1"] == {"mean": 0.72, "std": 0.0, "n": 1}
    assert agg["ensembles"]["bane"]["top1"]["mean"] == pytest.approx(0.76)
    assert list(agg["phases"]) == ["gen0", "gen1"]


def test_mean_std_by_hand():
    out = analysis.mean_std([1.0, 2.0, 3.0, 4.0])
    # mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, / (n - 1) = 5 / 3
    assert out == {"mean": 2.5, "std": pytest.approx(math.sqrt(5 / 3)), "n": 4}
    assert analysis.mean_std(iter([0.3, 0.3]))["std"] == 0.0        # any iterable


def test_mean_std_of_nothing_is_nan_with_n_zero():
    out = analysis.mean_std([])
    assert math.isnan(out["mean"]) and out["std"] == 0.0 and out["n"] == 0


def test_aggregate_matches_phases_by_name_not_position():
    run_a = {"phases": [{"name": "teacher", "best_top1": 0.9},
                        {"name": "stage1", "best_top1": 0.5, "best_top5": 0.8}]}
    run_b = {"phases": [{"name": "stage1", "best_top1": 0.7},
                        {"name": "teacher", "best_top1": 0.8}]}
    agg = analysis.aggregate_results([run_a, run_b])
    assert agg["phases"]["teacher"]["best_top1"]["mean"] == pytest.approx(0.85)
    assert agg["phases"]["stage1"]["best_top1"]["mean"] == pytest.approx(0.6)
    # A key only one run recorded counts that run alone.
    assert agg["phases"]["stage1"]["best_top5"] == {"mean": 0.8, "std": 0.0, "n": 1}
    assert set(agg["phases"]["teacher"]) == {"best_top1"}          # no keys invented
    assert agg["ensembles"] == {} and agg["runs"] == 2


def test_aggregate_of_no_runs_and_runs_without_phases():
    assert analysis.aggregate_results([]) == {"runs": 0, "phases": {}, "ensembles": {}}
    assert analysis.aggregate_results([{}, {}])["runs"] == 2


def test_load_results_reads_the_workdirs_results_json(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"phases": [{"name": "gen0"}]}))
    assert analysis.load_results(tmp_path) == {"phases": [{"name": "gen0"}]}
