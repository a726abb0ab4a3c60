"""Every file in configs/ loads the way the CLI loads it, validates, and says what the paper says.

The configs are loaded through the same absl flag as main.py (`DEFINE_config_file`,
locked, so `--config.<field>=` overrides work and typos fail), then `jaxkd.plans.validate` builds
the plan and checks models, losses and schedules: no data, no compile. On top, each paper
config is checked against the facts of its paper (epochs, batch, schedule, K/T/u/lambda,
anchors) so that an edit cannot silently drift from the experiment it claims to reproduce.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib

import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags

from jaxkd import losses, models, plans, plateau, schedules

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "configs"
HELPERS: set = set()                 # modules in configs/ that are not configs
NOT_PAPER = {"quickstart"}           # runs on the bundled sample, quotes no paper number

CONFIGS = sorted(p.stem for p in CONFIG_DIR.glob("*.py") if p.stem not in HELPERS)
PAPER_CONFIGS = [n for n in CONFIGS if n not in NOT_PAPER]


def parse_flags(*argv: str):
    """Parses argv with main.py's flag, `DEFINE_config_file(..., lock_config=True)`."""
    argv = ["jaxkd", *argv]
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "config file", flag_values=values,
                                    lock_config=True, sys_argv=argv)
    values(argv)
    return values.config


def load(name: str, path: str | None = None):
    """`get_config()` of configs/<name>.py, loaded exactly as the command line loads it."""
    return parse_flags(f"--config={path or CONFIG_DIR / f'{name}.py'}")


def num_classes(config) -> int:
    if config.data.source == "sample":
        return 10
    if config.data.source == "ptb":
        return 10_000                     # PTB's vocabulary
    return 1000 if config.data.name.startswith("imagenet") else 100


def lr(phase: plans.Phase, epoch: float) -> float:
    """The phase's learning rate at a (phase-schedule) epoch, with one step per epoch."""
    total = phase.schedule_num_epochs or phase.num_epochs
    sched = schedules.build(dict(phase.schedule), steps_per_epoch=1, num_epochs=total)
    return float(sched(epoch))


# -- facts of the papers ---------------------------------------------------------------


def _cifar100(c):
    assert (c.data.source, c.data.name, c.data.image_size) == ("tfds", "cifar100", 32)
    assert c.data.augment.kind == "cifar" and c.data.augment.crop_padding == 4
    assert c.data.augment.flip


def _imagenet(c):
    assert (c.data.source, c.data.name, c.data.image_size) == ("tfds", "imagenet2012", 224)
    assert c.data.augment.kind == "imagenet"


def _sgd(c, wd, nesterov=True):
    assert c.optimizer.name == "sgd" and c.optimizer.momentum == 0.9
    assert c.optimizer.nesterov is nesterov and c.optimizer.weight_decay == wd


def _resnet_protocol(c):            # [TT] and [SD], CIFAR ResNets
    _cifar100(c)
    _sgd(c, 1e-4)
    assert (c.batch_size, c.num_epochs) == (128, 164)


def _densenet_protocol(c):          # [TT] and [SD], CIFAR DenseNet-BC
    _cifar100(c)
    _sgd(c, 1e-4)
    assert (c.batch_size, c.num_epochs) == (64, 300)


def _wrn_protocol(c, plan):         # [BAN] = Zagoruyko & Komodakis 2016
    _cifar100(c)
    assert c.data.augment.pad_mode == "reflect"        # WRN: "reflections of original image"
    _sgd(c, 5e-4)
    assert (c.batch_size, c.num_epochs) == (128, 200)
    for p in plan:
        s = dict(p.schedule)
        assert (s["name"], s["base_lr"], s["boundaries"], s["factor"]) == (
            "step", 0.1, (60, 120, 160), 0.2)
        assert lr(p, 160) == pytest.approx(0.1 * 0.2 ** 3)


def _step(plan, base, boundaries):
    for p in plan:
        s = dict(p.schedule)
        assert (s["name"], s["base_lr"], s["boundaries"]) == ("step", base, boundaries)
        assert s["factor"] == 0.1
        assert lr(p, boundaries[-1]) == pytest.approx(base * 0.1 ** len(boundaries))


def _generations(plan, m):
    """Patriarch + m generations, each fresh and taught by the previous one."""
    assert len(plan) == m + 1 and plan[0].teacher is None
    for prev, p in zip(plan, plan[1:]):
        assert p.init == "fresh" and p.teacher.phases == (prev.name,)
    assert len({p.seed_index for p in plan}) == m + 1


def _tolerant(c, plan, u, lam, m, patriarch=None):
    _generations(plan, m)
    assert (c.tolerant_teacher.u, c.tolerant_teacher.label_weight) == (u, lam)
    assert c.tolerant_teacher.k == 5
    assert plan[0].role == "patriarch"                 # so results.json gets tt_ensemble
    if patriarch is not None:                          # [TT] Table 2's LSR / CP patriarchs
        assert (plan[0].loss, dict(plan[0].loss_params)) == patriarch
    elif u < 1:
        assert plan[0].loss == "tolerant_teacher"
        assert dict(plan[0].loss_params) == {"u": u, "k": 5}
    else:
        assert plan[0].loss == "cross_entropy"
    for p in plan[1:]:
        assert (p.loss, dict(p.loss_params)) == ("born_again", {"label_weight": lam})


def _ban(c, plan, m, model, teacher_model=None):
    _generations(plan, m)
    assert plan[0].model == (teacher_model or model) and plan[0].loss == "cross_entropy"
    assert all(p.model == model for p in plan[1:])
    assert c.born_again.variant == "ban"
    for p in plan[1:]:
        assert (p.loss, dict(p.loss_params)) == ("born_again", {"label_weight": 0.0})


def _snapshot(plan, cycles, epochs, temperature, teacher=True):
    assert len(plan) == cycles and all(p.num_epochs == epochs for p in plan)
    assert [p.init for p in plan] == ["fresh"] + ["continue"] * (cycles - 1)
    for k, p in enumerate(plan):
        s = dict(p.schedule)
        assert (s["name"], s["base_lr"]) == ("cosine", 0.1)        # alpha_k = 0.1
        assert lr(p, 0) == pytest.approx(0.1) and lr(p, epochs) == pytest.approx(0.0)
        assert lr(p, epochs / 2) == pytest.approx(0.05)             # Eqn 5 half-way
        if k == 0 or not teacher:
            assert p.teacher is None and p.loss == "cross_entropy"
        else:
            assert p.teacher.phases == (plan[k - 1].name,)
            assert (p.loss, dict(p.loss_params)) == (
                "snapshot_distillation", {"temperature": temperature})


def _rco(c, plan, *, mode, anchors, width, expansion):
    _cifar100(c)
    _sgd(c, 5e-4, nesterov=False)
    assert (c.batch_size, c.num_epochs, c.rco.mode) == (64, 240, mode)
    teacher, *students = plan
    assert (teacher.model, dict(teacher.model_overrides)) == ("resnet50", {"cifar_stem": True})
    assert teacher.num_epochs == 240 and teacher.anchor_every_epochs == 240 // anchors
    t_sched = dict(teacher.schedule)
    assert (t_sched["base_lr"], t_sched["boundaries"]) == (0.05, (150, 180, 210))
    assert lr(teacher, 149) == pytest.approx(0.05) and lr(teacher, 210) == pytest.approx(5e-5)
    overrides = dict(students[0].model_overrides)
    assert students[0].model == "mobilenetv2_cifar"
    assert (overrides["width"], overrides["expansion"]) == (width, expansion)
    assert overrides["round_channels"] is False        # [RCO] Table 3's MFLOPs
    assert len(students) == anchors                    # one stage per anchor
    per = 240 // anchors
    for i, s in enumerate(students):
        assert s.init == ("fresh" if i == 0 else "continue")
        window = (240, 0, 0) if mode == "greedy" else (per, i * per, 240)  # a full schedule
        assert (s.num_epochs, s.schedule_start_epoch, s.schedule_num_epochs) == window
        assert dict(s.loss_params) == {"ce_weight": 1.0, "kl_weight": 1.0,
                                       "temperature": 5.0, "scale_by_t2": True}
    # The student's one 240-epoch schedule: 0.01, /10 at 150, 180, 210.
    for epoch, value in ((0, 0.01), (149, 0.01), (150, 1e-3), (180, 1e-4), (239, 1e-5)):
        assert lr(students[0], epoch) == pytest.approx(value)
    return students


def check_baseline_resnet110(c, plan):
    _resnet_protocol(c)
    assert len(plan) == 1 and plan[0].model == "resnet110" and plan[0].loss == "cross_entropy"
    _step(plan, 0.1, (82, 123))


def check_baseline_resnet20(c, plan):
    _resnet_protocol(c)
    assert len(plan) == 1 and plan[0].model == "resnet20"
    assert dict(plan[0].schedule)["name"] == "cosine"          # [SD]'s BL
    assert lr(plan[0], 82) == pytest.approx(0.05)


def check_tt_resnet110(c, plan):
    _resnet_protocol(c)
    _step(plan, 0.1, (82, 123))
    _tolerant(c, plan, 0.6, 0.6, 10)
    assert losses.eta_from_primary_score(0.6, k=5) == pytest.approx(3 / 7)


def check_ban_resnet110(c, plan):
    _resnet_protocol(c)
    _step(plan, 0.1, (82, 123))
    _tolerant(c, plan, 1.0, 0.6, 10)                           # D(1.0, 0.6)


def check_tt_resnet110_lsr(c, plan):
    _resnet_protocol(c)
    _step(plan, 0.1, (82, 123))
    _tolerant(c, plan, 0.6, 0.6, 10, patriarch=("cross_entropy", {"label_smoothing": 0.1}))


def check_tt_resnet110_cp(c, plan):
    _resnet_protocol(c)
    _step(plan, 0.1, (82, 123))
    _tolerant(c, plan, 0.6, 0.6, 10, patriarch=("confidence_penalty", {"beta": 0.1}))


def check_tt_densenet100(c, plan):
    _densenet_protocol(c)
    _step(plan, 0.1, (150, 225))
    _tolerant(c, plan, 0.6, 0.6, 5)
    assert all(p.model == "densenet_bc_100_12" for p in plan)


def check_tt_densenet190(c, plan):
    _densenet_protocol(c)
    _step(plan, 0.1, (150, 225))
    _tolerant(c, plan, 0.6, 0.6, 5)
    assert all(p.model == "densenet_bc_190_40" for p in plan)


def check_tt_resnet18_imagenet(c, plan):
    _imagenet(c)
    _sgd(c, 1e-4)
    assert (c.batch_size, c.num_epochs) == (1024, 100)
    _step(plan, 0.1, (30, 60, 90))
    _tolerant(c, plan, 0.6, 0.6, 5)
    assert all(p.model == "resnet18" for p in plan)


def check_ban_densenet80_80(c, plan):
    _wrn_protocol(c, plan)
    _ban(c, plan, 3, "densenet_80_80")


def check_ban_wrn28_10(c, plan):
    _wrn_protocol(c, plan)
    _ban(c, plan, 1, "wrn_28_10")
    assert dict(plan[1].model_overrides) == {"dropout_rate": 0.3}


def check_ban_densenet_table4(c, plan):
    _wrn_protocol(c, plan)
    _ban(c, plan, 1, "densenet_90_60", teacher_model="densenet_90_60")
    assert dict(plan[0].model_overrides) == {}                 # the named 90-60 teacher
    student = dict(plan[1].model_overrides)
    assert (student["layers_per_block"], student["growth_rate"]) == (28, 30)   # 2*Depth
    assert (student["stem_features"], student["compression"]) == (120, 0.5)


def check_ban_densenet_to_resnet(c, plan):
    _wrn_protocol(c, plan)
    _ban(c, plan, 1, "wrn_28_10", teacher_model="densenet_90_60")
    assert dict(plan[0].model_overrides) == {}


def _sd_resnet(depth, temperature):
    def check(c, plan):
        _resnet_protocol(c)
        assert all(p.model == f"resnet{depth}" for p in plan)
        _snapshot(plan, 4, 41, temperature)                    # boundaries 41/82/123
    return check


check_sd_resnet20 = _sd_resnet(20, 3.0)
check_sd_resnet32 = _sd_resnet(32, 3.0)
check_sd_resnet56 = _sd_resnet(56, 2.0)
check_sd_resnet110 = _sd_resnet(110, 2.0)


def check_sd_densenet100(c, plan):
    _densenet_protocol(c)
    assert all(p.model == "densenet_bc_100_12" for p in plan)
    _snapshot(plan, 4, 75, 3.0)                                # boundaries 75/150/225


def check_sd_densenet190(c, plan):
    _densenet_protocol(c)
    assert all(p.model == "densenet_bc_190_40" for p in plan)
    _snapshot(plan, 4, 75, 2.0)


def check_se_densenet190(c, plan):
    _densenet_protocol(c)
    assert c.method == "snapshot_ensemble"
    _snapshot(plan, 4, 75, None, teacher=False)


def check_sd_resnet152_imagenet(c, plan):
    _imagenet(c)
    _sgd(c, 1e-4)
    assert (c.batch_size, c.num_epochs) == (256, 90)
    assert all(p.model == "resnet152" for p in plan)
    _snapshot(plan, 2, 45, 2.0)                                # K = 2, 45 + 45


def check_rco_mobilenetv2(c, plan):
    students = _rco(c, plan, mode="one_stage", anchors=24, width=0.35, expansion=4)
    assert [s.teacher.anchor for s in students] == list(range(10, 241, 10))
    assert all(s.teacher.phases == ("teacher",) for s in students)


def check_rco_greedy_mobilenetv2(c, plan):
    students = _rco(c, plan, mode="greedy", anchors=24, width=0.5, expansion=6)
    assert (c.rco.delta, c.data.heldout_size, c.data.heldout_mode) == (0.8, 10000, "sample")
    assert all(s.teacher.select == "greedy" and s.teacher.route == tuple(range(10, 241, 10))
               for s in students)


def check_kd_mobilenetv2(c, plan):
    (student,) = _rco(c, plan, mode="kd", anchors=1, width=0.5, expansion=6)
    assert student.teacher.anchor == 240 and student.init == "fresh"


def check_rco_mobilenetv2_imagenet(c, plan):
    """[RCO] Sec. 4.2: the teacher trains on its own schedule, not the student's."""
    assert (c.data.name, c.batch_size, c.model, c.rco.mode) == (
        "imagenet2012", 3072, "mobilenetv2", "one_stage")
    teacher, *students = plan
    assert (teacher.model, teacher.num_epochs, teacher.anchor_every_epochs) == ("resnet50",
                                                                                120, 10)
    assert lr(teacher, 4) < 0.4 and lr(teacher, 5) == pytest.approx(0.4)   # warm-up
    assert lr(teacher, 35) == pytest.approx(0.4) and lr(teacher, 36) == pytest.approx(0.04)
    assert lr(teacher, 119) == pytest.approx(4e-4)
    assert len(students) == 12 and all(s.num_epochs == 26 for s in students)
    assert lr(students[0], 5) == pytest.approx(0.1)
    assert lr(students[0], 108) == pytest.approx(0.01)
    assert lr(students[0], 311) == pytest.approx(1e-4)
    assert [s.teacher.anchor for s in students] == list(range(10, 121, 10))


def check_sd_densenet100_table2(c, plan):
    """[SD] Table 2: the M#75 snapshot continues epochs 76..300, taught by a checkpoint."""
    (student,) = plan
    assert (c.method, student.model, student.init) == ("kd", "densenet_bc_100_12", "fresh")
    assert (student.num_epochs, student.schedule_start_epoch, student.schedule_num_epochs) \
        == (225, 75, 300)
    assert c.init.checkpoint.endswith(f"ckpt/{75 * 782}") and c.batch_size == 64
    assert student.teacher.checkpoint == c.teacher.checkpoint and student.loss == \
        "snapshot_distillation"
    # The schedule picks up at epoch 75 of 300: 0.1 * (1 + cos(pi / 4)) / 2.
    assert lr(student, 75) == pytest.approx(0.05 * (1 + np.cos(np.pi / 4)))


def check_rco_rl_mobilenetv2(c, plan):
    """[RCO] Table 6 RL: teacher and student of Sec. 4.1 trained together, 240 epochs."""
    _cifar100(c)
    _sgd(c, 5e-4, nesterov=False)
    (phase,) = plan
    o = dict(phase.model_overrides)
    assert (phase.model, phase.loss, phase.num_epochs, c.batch_size) == (
        "route_pair", "online_route", 240, 64)
    assert (o["teacher_model"], dict(o["teacher_overrides"])) == ("resnet50",
                                                                  {"cifar_stem": True})
    assert o["student_model"] == "mobilenetv2_cifar"
    assert dict(o["student_overrides"]) == {"width": 0.35, "expansion": 4,
                                             "round_channels": False}
    assert dict(phase.loss_params) == {"kl_weight": 1.0, "temperature": 5.0}
    assert c.optimizer.lr_scales.teacher * dict(phase.schedule)["base_lr"] == \
        pytest.approx(0.05)                                 # the teacher's own lr
    assert lr(phase, 150) == pytest.approx(1e-3)


def check_ban_lstm_ptb(c, plan):
    """[BAN] Sec. 4.2 / Table 6: one LSTM layer of 1500 units, tied weights, dropout 0.65,
    SGD lr 1 (per window-summed loss), batch 32, 40 epochs, BAN+L for the student."""
    assert (c.data.source, c.data.bptt, c.batch_size, c.num_epochs) == ("ptb", 35, 32, 40)
    gen0, gen1 = plan
    assert (gen0.loss, gen1.loss, gen1.teacher.phases) == ("cross_entropy", "ban_l",
                                                           ("gen0",))
    o = {**models.model_overrides("lstm_lm"), **dict(gen0.model_overrides)}
    assert (o["hidden_dim"], o["embed_dim"], o["num_layers"], o["tie_weights"]) == (
        1500, 1500, 1, True)
    assert o["dropout"] == pytest.approx(0.65) and o["init_scale"] == pytest.approx(0.05)
    assert (c.optimizer.momentum, c.optimizer.weight_decay) == (0.0, 0.0)
    assert lr(gen0, 0) / c.data.bptt == pytest.approx(1.0)     # lr 1 per summed window
    assert c.optimizer.clip_grad_norm * c.data.bptt == pytest.approx(10.0)
    # x0.25 whenever the validation perplexity does not decrease after an epoch
    rule = plateau.from_schedule(dict(gen0.schedule))
    assert (rule.factor, rule.threshold, rule.monitor) == (0.25, 0.0, "perplexity")


def check_ban_cnn_lstm_ptb(c, plan):
    """[BAN] Sec. 4.2 / Table 6: Kim et al.'s LSTM-Char-Large (widths 1-7, min(200, 50 w)
    filters, 2 highway layers, 2 x 650 LSTM, dropout 0.5), BAN+L, SGD lr 2 per summed
    window, batch 20, 40 epochs, x0.5 unless the validation perplexity drops by 0.5."""
    assert (c.data.source, c.data.bptt, c.batch_size, c.num_epochs) == ("ptb", 35, 20, 40)
    gen0, gen1 = plan
    assert (gen0.model, gen1.loss, gen1.teacher.phases) == ("cnn_lstm_lm", "ban_l",
                                                            ("gen0",))
    o = {**models.model_overrides("cnn_lstm_lm"), **dict(gen0.model_overrides)}
    assert (o["char_dim"], tuple(o["filter_widths"]), o["highway_layers"], o["hidden_dim"],
            o["num_layers"]) == (15, (1, 2, 3, 4, 5, 6, 7), 2, 650, 2)
    assert [min(o["max_filters"], o["filters_per_width"] * w) for w in o["filter_widths"]] \
        == [50, 100, 150, 200, 200, 200, 200]
    assert o["dropout"] == pytest.approx(0.5)
    assert (c.optimizer.momentum, c.optimizer.weight_decay) == (0.0, 0.0)
    assert lr(gen0, 0) / c.data.bptt == pytest.approx(2.0)     # lr 2 per summed window
    assert c.optimizer.clip_grad_norm * c.data.bptt == pytest.approx(5.0)
    rule = plateau.from_schedule(dict(gen0.schedule))
    assert (rule.factor, rule.threshold, rule.monitor) == (0.5, 0.5, "perplexity")


FACTS = {name[len("check_"):]: fn for name, fn in globals().items()
         if name.startswith("check_")}


# -- tests -----------------------------------------------------------------------------


def test_every_paper_config_has_its_facts_checked():
    assert sorted(FACTS) == PAPER_CONFIGS


@pytest.mark.parametrize("name", CONFIGS)
def test_config_validates_without_data(name):
    config = load(name)
    plan = plans.validate(config)
    plans.validate_losses(plan, num_classes(config))
    for phase in plan:        # models build with their overrides (no init, no compile)
        models.get_model(phase.model, num_classes=num_classes(config),
                         **dict(phase.model_overrides))


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_config_matches_its_paper(name):
    config = load(name)
    FACTS[name](config, plans.validate(config))


@pytest.mark.parametrize("name", CONFIGS)
def test_docstring_gives_the_command_with_its_own_file(name):
    doc = load_module_doc(name)
    assert f"python -m jaxkd.main --config=configs/{name}.py --workdir=" in doc
    if name in NOT_PAPER:
        return
    assert f"python -m jaxkd.main --config=configs/{name}.py --workdir=/tmp/{name}" in doc
    assert "estimate" in doc and "Paper number" in doc
    config = load(name)
    if config.data.name == "cifar100":
        assert ("--config.data.source=cifar_binary "
                "--config.data.path=/path/cifar-100-binary.tar.gz") in doc


def load_module_doc(name: str) -> str:
    return ast.get_docstring(ast.parse((CONFIG_DIR / f"{name}.py").read_text())) or ""


def test_loss_hyper_parameters_fail_for_too_few_classes():
    """The class count matters: TSD's K = 5 needs at least 5 classes."""
    plan = plans.validate(load("tt_resnet110"))
    plans.validate_losses(plan, 100)
    with pytest.raises(ValueError, match="config.tolerant_teacher.k"):
        plans.validate_losses(plan, 4)


def test_configs_load_from_any_working_directory(tmp_path, monkeypatch):
    """A config loads by path from any current directory."""
    monkeypatch.chdir(tmp_path)
    config = load("sd_resnet110", str(CONFIG_DIR / "sd_resnet110.py"))
    assert config.snapshot.temperature == 2.0
    monkeypatch.chdir(REPO)
    assert load("sd_resnet110", "configs/sd_resnet110.py").model == "resnet110"


def test_command_line_overrides_reach_a_config():
    """The absl flag of main.py with `--config.<field>=` overrides, then validation."""
    config = parse_flags(f"--config={CONFIG_DIR / 'sd_resnet20.py'}",
                         "--config.data.source=sample", "--config.model=resnet8",
                         "--config.num_epochs=4", "--config.batch_size=64",
                         "--config.snapshot.temperature=2")
    plan = plans.validate(config)
    plans.validate_losses(plan, num_classes(config))
    assert [p.num_epochs for p in plan] == [1, 1, 1, 1]
    assert config.batch_size == 64 and plan[0].model == "resnet8"
    assert dict(plan[1].loss_params) == {"temperature": 2.0}
    with pytest.raises((AttributeError, flags.Error), match="temprature"):
        parse_flags(f"--config={CONFIG_DIR / 'sd_resnet20.py'}",
                    "--config.snapshot.temprature=2")


# -- baselines beside the papers' processes (LSR, CP) and override rows ---------------

SELF_DISTILLATION = [n for n in PAPER_CONFIGS
                     if n.split("_")[0] in ("ban", "tt", "sd", "se", "baseline")
                     and n != "sd_densenet100_table2"    # a study of one table's pairs
                     and n not in ("ban_lstm_ptb", "ban_cnn_lstm_ptb")]   # LMs: no LSR row


def _documented(name: str, label: str) -> list[str]:
    """The backquoted `--config.` overrides that follow `label` in a config's docstring."""
    doc = load_module_doc(name)
    assert label in doc, f"configs/{name}.py documents no {label!r}"
    after = doc[doc.index(label):]
    return after[after.index("`") + 1:].split("`", 1)[0].split()


def test_baseline_accepts_label_smoothing_on_the_command_line():
    config = parse_flags(f"--config={CONFIG_DIR / 'baseline_resnet20.py'}",
                         "--config.loss.label_smoothing=0.1")
    (phase,) = plans.validate(config)
    plans.validate_losses([phase], 100)
    assert (phase.loss, dict(phase.loss_params)) == ("cross_entropy", {"label_smoothing": 0.1})


@pytest.mark.parametrize("name", SELF_DISTILLATION)
def test_every_self_distillation_table_has_its_lsr_baseline(name):
    """Each config of a BAN/TT/SD table documents the override that gives its LSR row."""
    args = _documented(name, "LSR baseline")
    assert "--config.loss.label_smoothing=0.1" in args
    config = parse_flags(f"--config={CONFIG_DIR / f'{name}.py'}", *args)
    plan = plans.validate(config)
    plans.validate_losses(plan, num_classes(config))
    assert len(plan) == 1 and plan[0].teacher is None
    assert (plan[0].loss, dict(plan[0].loss_params)) == (
        "cross_entropy", {"label_smoothing": 0.1})
    plain = plans.validate(load(name))
    assert plan[0].schedule == plain[0].schedule and plan[0].num_epochs == (
        config.num_epochs)                               # the table's own protocol


@pytest.mark.parametrize("name", [n for n in SELF_DISTILLATION
                                  if load(n).method == "tolerant_teacher"
                                  and load(n).tolerant_teacher.patriarch_loss
                                  == "tolerant_teacher"])
@pytest.mark.parametrize("kind, expected", [
    ("label_smoothing", ("cross_entropy", {"label_smoothing": 0.1})),
    ("confidence_penalty", ("confidence_penalty", {"beta": 0.1}))])
def test_tt_configs_swap_in_the_lsr_and_cp_patriarchs(name, kind, expected):
    """[TT] Figure 2's LSR-0.6 / CP-0.6 processes from any TT config, as documented."""
    assert "--config.tolerant_teacher.patriarch_loss=label_smoothing" in load_module_doc(name)
    config = parse_flags(f"--config={CONFIG_DIR / f'{name}.py'}",
                         f"--config.tolerant_teacher.patriarch_loss={kind}")
    plan = plans.validate(config)
    plans.validate_losses(plan, num_classes(config))
    assert plan[0].role == "patriarch"
    assert (plan[0].loss, dict(plan[0].loss_params)) == expected
    assert all(p.loss == "born_again" for p in plan[1:])


def test_ban_table4_rows_are_documented_overrides():
    """[BAN] Table 4: seven students of DenseNet-90-60, one override line each."""
    doc = load_module_doc("ban_densenet_table4")
    rows = [line.strip().strip("`").split() for line in doc.splitlines()
            if line.strip().startswith("`--config.model_overrides.")]
    assert len(rows) == 7
    widths = set()
    for args in rows:
        config = parse_flags(f"--config={CONFIG_DIR / 'ban_densenet_table4.py'}", *args)
        plan = plans.validate(config)
        student = dict(plan[1].model_overrides)
        models.get_model(plan[1].model, num_classes=100, **student)
        assert plan[0].model == "densenet_90_60" and dict(plan[0].model_overrides) == {}
        if student["compression"] == 0.5:                 # the depth rows
            widths.add(student["stem_features"]
                       + student["layers_per_block"] * student["growth_rate"])
    assert widths == {120 + 14 * 60}                       # the teacher's block output
