"""jaxkd.presets: the papers' protocols the configs build on, and the smoke preset
(`--config.smoke=True`) that shrinks any config to about a minute (issue 20, fast trials)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest

from jaxkd import plans, presets
from jaxkd.config import default_config
from tests.test_configs import PAPER_CONFIGS, load

REPO = pathlib.Path(__file__).resolve().parents[1]


def _env() -> dict:
    env = dict(os.environ)
    env.update(JAX_PLATFORMS="cpu",
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def test_presets_is_a_helper_not_a_config():
    from jaxkd import presets as module
    assert not hasattr(module, "get_config")
    assert module.command("sd_resnet20") == (
        "python -m jaxkd.main --config=configs/sd_resnet20.py --workdir=/tmp/sd_resnet20")


# -- the papers' protocols --------------------------------------------------------------


def test_cifar100_resnet_protocol():
    c = default_config()
    assert presets.cifar100_resnet(c, 56) is c                 # in place, returned
    assert (c.model, c.batch_size, c.num_epochs) == ("resnet56", 128, 164)
    assert (c.data.source, c.data.name, c.data.augment.pad_mode) == ("tfds", "cifar100",
                                                                     "constant")
    assert (c.optimizer.nesterov, c.optimizer.weight_decay) == (True, 1e-4)
    assert (c.schedule.name, c.schedule.boundaries, c.schedule.factor) == ("step", (82, 123),
                                                                           0.1)
    assert c.loss.to_dict() == {"name": "cross_entropy", "label_smoothing": 0.0}
    presets.cifar100_resnet(c, 20, schedule="cosine")
    assert (c.model, c.schedule.name, c.schedule.boundaries) == ("resnet20", "cosine", ())


def test_cifar100_densenet_and_wide_resnet_protocols():
    c = presets.cifar100_densenet(default_config(), 190)
    assert (c.model, c.batch_size, c.num_epochs, c.schedule.boundaries) == (
        "densenet_bc_190_40", 64, 300, (150, 225))
    with pytest.raises(KeyError):
        presets.cifar100_densenet(default_config(), 121)       # no such CIFAR DenseNet-BC
    w = presets.wide_resnet_protocol(default_config())
    assert (w.data.augment.pad_mode, w.optimizer.weight_decay, w.num_epochs) == (
        "reflect", 5e-4, 200)
    assert (w.schedule.boundaries, w.schedule.factor) == ((60, 120, 160), 0.2)


def test_method_presets_set_the_method_and_its_group():
    c = presets.tolerant_teacher(default_config(), u=0.6, label_weight=0.4, generations=3)
    assert (c.method, c.generations, c.tolerant_teacher.u, c.tolerant_teacher.k) == (
        "tolerant_teacher", 3, 0.6, 5)
    s = presets.snapshot(default_config(), temperature=3.0, teacher=False)
    assert (s.method, s.snapshot.cycles, s.schedule.name) == ("snapshot_ensemble", 4, "cosine")
    r = presets.rco_cifar100(default_config(), mode="greedy", anchor_every_epochs=10,
                             width=0.5, expansion=6)
    assert (r.method, r.rco.mode, r.teacher.model, r.rco.teacher_lr) == (
        "rco", "greedy", "resnet50", 0.05)
    assert r.model_overrides.to_dict() == {"width": 0.5, "expansion": 6,
                                           "round_channels": False}
    assert len(plans.validate(r)) == 1 + 24


def test_imagenet_preset():
    c = presets.imagenet(default_config())
    assert (c.data.name, c.data.image_size, c.data.augment.kind) == ("imagenet2012", 224,
                                                                     "imagenet")


# -- smoke -------------------------------------------------------------------------------


def _structure(plan):
    return [(p.name, p.role, p.init, p.loss,
             None if p.teacher is None else (p.teacher.phases, p.teacher.select,
                                             bool(p.teacher.checkpoint)))
            for p in plan]


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_every_paper_config_validates_under_smoke_with_one_epoch_per_phase(name):
    config = load(name)
    plan = plans.validate(config)
    small = presets.smoke(config)
    assert small.smoke and not config.smoke           # a copy; the original is unchanged
    small_plan = plans.validate(small)
    assert _structure(small_plan) == _structure(plan)
    for phase in small_plan:
        models = {phase.model} | set(dict(phase.model_overrides).get(k) for k in (
            "teacher_model", "student_model") if phase.model == "route_pair")
        assert models <= {"resnet8", "route_pair"}, (phase.name, models)
        if phase.role == "teacher" and config.method == "rco":
            # one epoch per anchor: the students keep every anchor of the route
            assert phase.num_epochs == len(small_plan[-1].teacher.route or ()) or \
                phase.num_epochs == small.rco.teacher_epochs
        else:
            assert phase.num_epochs == 1, (phase.name, phase.num_epochs)
    assert small.data.source == "sample" and small.batch_size == 32
    assert presets.smoke(small).to_dict() == small.to_dict()   # idempotent: reruns resume


def test_smoke_runs_a_paper_config_through_the_cli_in_under_90_s(tmp_path):
    workdir = tmp_path / "smoke"
    cmd = [sys.executable, "-m", "jaxkd.main", "--config=configs/sd_resnet56.py",
           f"--workdir={workdir}", "--config.smoke=True", "--config.progress_bar=False"]
    t0 = time.time()
    done = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True,
                          timeout=300)
    wall = time.time() - t0
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    results = json.loads((workdir / "results.json").read_text())
    assert [p["name"] for p in results["phases"]] == ["cycle1", "cycle2", "cycle3", "cycle4"]
    written = json.loads((workdir / "config.json").read_text())
    assert written["smoke"] and written["model"] == "resnet8"
    assert written["data"]["test_per_class"] == presets.SMOKE_TEST_PER_CLASS
    assert (workdir / "report.md").is_file()
    assert wall < 90, f"smoke run took {wall:.0f} s"
    # The same command again resumes the same workdir (smoke is idempotent).
    again = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert "finished earlier, skipped" in again.stdout + again.stderr


def test_smoke_keeps_one_anchor_per_epoch_of_an_rco_teacher():
    c = presets.rco_cifar100(default_config(), mode="one_stage", anchor_every_epochs=60,
                             width=0.5, expansion=6)
    small = presets.smoke(c)
    teacher, *stages = plans.validate(small)
    assert (small.rco.anchor_every_epochs, small.rco.teacher_epochs) == (1, 4)
    assert teacher.num_epochs == 4 and [s.teacher.anchor for s in stages] == [1, 2, 3, 4]
    assert all(s.num_epochs == 1 for s in stages)
    assert (c.rco.anchor_every_epochs, c.model) == (60, "mobilenetv2_cifar")   # unchanged


def test_smoke_of_the_rest_of_a_schedule_and_of_a_cyclic_cosine():
    c = default_config()
    c.init.checkpoint, c.init.epoch, c.num_epochs = "/ckpt", 150, 300
    small = presets.smoke(c)
    assert (small.num_epochs, small.init.epoch, small.init.checkpoint) == (2, 1, "/ckpt")
    c = default_config()
    c.schedule.name, c.schedule.cycles = "cyclic_cosine", 4
    assert presets.smoke(c).schedule.cycles == 1


def test_smoke_data_is_the_bundled_sample():
    c = presets.imagenet(default_config())
    c.data.heldout_size, c.data.label_key = 5000, "fine"
    d = presets.smoke(c).data
    assert (d.source, d.name, d.image_size, d.augment.kind) == ("sample", "", 32, "cifar")
    assert (d.train_per_class, d.test_per_class, d.heldout_size, d.label_key) == (
        presets.SMOKE_TRAIN_PER_CLASS, presets.SMOKE_TEST_PER_CLASS, presets.SMOKE_HELDOUT,
        "label")
