"""experiments/gpu/table3.py: [SD] Table 3's row on one GPU lease, sized from benchmarks.

The GPU run itself needs a lease; what can fail here is checked here: the protocol is the
paper's (never shortened by the sizing), the seed count is the largest that fits the
budget by the stated estimate (hand-computed), a torn metrics line does not break the
progress file, and the error row reads both unpacked and packed results.
"""
import json

import pytest

from experiments.gpu import table3
from jaxkd import plans

RATES = {"plain": {1: 1000.0, 2: 1600.0, 4: 2400.0}, "kd": {1: 800.0, 2: 1200.0, 4: 1600.0}}


def test_configs_are_the_papers_protocol_whatever_the_seed_count():
    for n in (1, 4):
        runs = table3.configs(data="/data/cifar-100-binary", num_seeds=n, dtype="bfloat16",
                              tiny=False)
        assert list(runs) == ["baseline", "sd_k4_t2"]
        for config in runs.values():
            assert (config.model, config.num_epochs, config.batch_size) == ("resnet20", 164, 128)
            assert (config.schedule.name, config.schedule.base_lr) == ("cosine", 0.1)
            assert config.optimizer.weight_decay == 1e-4 and config.optimizer.nesterov
            assert config.num_seeds == n and config.eval_every_epochs == 41
            assert config.steps_per_call == 390 and config.data.train_per_class == 0
        sd = runs["sd_k4_t2"]
        assert (sd.method, sd.snapshot.cycles, sd.snapshot.temperature) == \
            ("snapshot_distillation", 4, 2.0)
        assert [p.num_epochs for p in plans.validate(sd)] == [41] * 4
        assert [p.num_epochs for p in plans.validate(runs["baseline"])] == [164]


def test_estimate_is_images_over_packed_rates_with_overhead_and_compiles():
    # 2 seeds x 50 000 images x 164 epochs = 16.4M images per run: BL at 1600 img/s, SD's
    # first quarter at 1600 and the rest at 1200; x 1.3, + 40 s for each of 5 phases.
    steps = 16.4e6 / 1600 + 16.4e6 / 4 / 1600 + 16.4e6 * 3 / 4 / 1200
    assert table3.estimate_s(2, RATES, epochs=164, images=50_000, overhead=1.3,
                             compile_s=40.0) == pytest.approx(1.3 * steps + 200)


def test_choose_seeds_takes_the_most_that_fit_and_at_least_one():
    kw = dict(epochs=164, images=50_000, overhead=1.3, compile_s=40.0)
    n, estimates = table3.choose_seeds(RATES, 1e9, **kw)
    assert n == 4 and sorted(estimates) == [1, 2, 4]
    n, _ = table3.choose_seeds(RATES, (estimates[2] + estimates[4]) / 2, **kw)
    assert n == 2
    n, _ = table3.choose_seeds(RATES, 1.0, **kw)
    assert n == 1                       # never zero seeds, never a shortened schedule


def test_packed_rates_reads_the_benchmark_files_and_names_a_missing_one(tmp_path):
    for name, kd in (("packing_resnet20.json", False), ("packing_resnet20_kd.json", True)):
        seeds = {str(n): {"packed": {"items_per_s": r}} for n, r in
                 RATES["kd" if kd else "plain"].items()}
        (tmp_path / name).write_text(json.dumps({"seeds": seeds}))
    assert table3.packed_rates(tmp_path) == RATES
    (tmp_path / "packing_resnet20_kd.json").unlink()
    with pytest.raises(FileNotFoundError, match="packing_resnet20_kd.json is missing"):
        table3.packed_rates(tmp_path)


def test_evaluations_skip_a_torn_last_line(tmp_path):
    lines = [{"kind": "train", "step": 1}, {"kind": "eval", "phase": "cycle1", "epoch": 41,
                                            "top1": 0.5, "top5": 0.8, "loss": 2.0}]
    (tmp_path / "metrics.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in lines) + '{"kind": "ev')
    assert table3.evaluations(tmp_path) == [
        {"phase": "cycle1", "epoch": 41, "top1": 0.5, "top5": 0.8}]
    assert table3.evaluations(tmp_path / "absent") == []


def test_row_reads_unpacked_and_packed_results():
    unpacked = {"phases": [{"last_top1": 0.6, "best_top1": 0.6},
                           {"last_top1": 0.65, "best_top1": 0.66}],
                "ensembles": {"sd_ensemble": {"top1": 0.7, "top5": 0.9}}}
    assert table3.row(unpacked) == pytest.approx(
        {"last": 35.0, "best": 34.0, "n": 1, "ensemble_sd_ensemble": 30.0})
    packed = {"aggregate": {"runs": 3, "phases": {
        "cycle1": {"last_top1": {"mean": 0.6}, "best_top1": {"mean": 0.62}},
        "cycle2": {"last_top1": {"mean": 0.65}, "best_top1": {"mean": 0.65}}},
        "ensembles": {"sd_ensemble": {"top1": {"mean": 0.7}}}}}
    assert table3.row(packed) == pytest.approx(
        {"last": 35.0, "best": 35.0, "n": 3, "ensemble_sd_ensemble": 30.0})
