"""Config presets: `smoke(config)` shrinks any config to a trial of about a minute on CPU.

`--config.smoke=True` (any config file) makes `jaxkd.run.run` apply `smoke` before
validation, so the resolved config.json of the workdir records what actually ran::

    python -m jaxkd.main --config=configs/sd_resnet56.py --workdir=/tmp/sd_smoke \
        --config.smoke=True

What it keeps: the method and its plan's phase structure (the same phases, names, roles,
inits and teachers), the losses and their parameters, the optimiser, the seed. What it
changes: every model is `resnet8` (overrides dropped), the data is the bundled CIFAR-10
sample (16 training and 20 test images per class, 32x32, CIFAR augmentation; any held-out
split 40 images), batch 32 (eval 200), one epoch per phase, step boundaries and warmup
dropped. The one exception to "one epoch per phase" is an RCO teacher run, which keeps one
epoch per anchor (an anchor is an epoch's checkpoint), so the students keep every anchor.

`smoke` is idempotent: applying it to a smoked config changes nothing, so a rerun of the
same command resumes the same workdir.
"""

from __future__ import annotations

import ml_collections

SMOKE_MODEL = "resnet8"
SMOKE_TRAIN_PER_CLASS = 16
SMOKE_TEST_PER_CLASS = 20
SMOKE_HELDOUT = 40
SMOKE_BATCH, SMOKE_EVAL_BATCH = 32, 200


def _rco_epochs(config) -> None:
    """RCO: the teacher keeps one anchor per epoch, as many anchors as before."""
    rco = config.rco
    if rco.mode == "online":
        rco.teacher_epochs = 0
        config.num_epochs = 1
        return
    teacher_epochs = rco.teacher_epochs or config.num_epochs
    every = rco.anchor_every_epochs if isinstance(rco.anchor_every_epochs, int) else 1
    anchors = max(1, teacher_epochs // max(1, every))
    rco.anchor_every_epochs = 1
    rco.teacher_epochs = anchors
    # one_stage: anchor i for E/n epochs of one schedule -> E = n gives 1 epoch a stage;
    # multi_stage / greedy: a full schedule per stage -> 1 epoch; kd: the last anchor.
    config.num_epochs = anchors if rco.mode == "one_stage" else 1
    if len(rco.teacher_schedule):
        if "boundaries" in rco.teacher_schedule:
            rco.teacher_schedule.boundaries = ()
        if "warmup_epochs" in rco.teacher_schedule:
            rco.teacher_schedule.warmup_epochs = 0


def smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of `config` that runs in about a minute on 2 CPU cores (see the module).

    Args:
        config: any config built from `jaxkd.config.default_config()`.

    Returns:
        A new ConfigDict; `config` itself is not changed.
    """
    c = ml_collections.ConfigDict(config.to_dict())
    # Models: one small CIFAR ResNet everywhere (teachers and RCO teachers too).
    c.model = SMOKE_MODEL
    c.model_overrides = ml_collections.ConfigDict()
    if c.teacher.model:
        c.teacher.model = SMOKE_MODEL
    c.teacher.model_overrides = ml_collections.ConfigDict()
    if c.rco.teacher_model:
        c.rco.teacher_model = SMOKE_MODEL
    # Data: the bundled sample, a stratified subset of train and test.
    d = c.data
    d.source, d.name, d.path, d.test_path, d.data_dir = "sample", "", "", "", ""
    d.image_key, d.train_split, d.test_split, d.streaming = "", "", "", "auto"
    d.image_size = 32
    d.train_per_class, d.test_per_class = SMOKE_TRAIN_PER_CLASS, SMOKE_TEST_PER_CLASS
    if d.heldout_size:
        d.heldout_size = SMOKE_HELDOUT
    if d.label_key not in ("label", "coarse_label"):
        d.label_key = "label"
    if d.augment.kind == "imagenet":
        d.augment.kind, d.augment.crop_padding = "cifar", 4
    c.batch_size, c.eval_batch_size = SMOKE_BATCH, SMOKE_EVAL_BATCH
    c.log_every_steps = min(c.log_every_steps, 5)
    c.checkpoint_every_steps = 0
    # Epochs: one per phase.
    c.schedule.boundaries = ()
    c.schedule.warmup_epochs = 0
    if c.method in ("snapshot_distillation", "snapshot_ensemble"):
        c.num_epochs = c.snapshot.cycles      # one epoch per mini-generation
    elif c.method == "rco":
        _rco_epochs(c)
    elif c.init.epoch:                        # the rest of a schedule: its last epoch
        c.num_epochs, c.init.epoch = 2, 1
    else:
        c.num_epochs = 1
    if c.schedule.name == "cyclic_cosine":   # K cycles need K steps at least
        c.schedule.cycles = 1
    c.eval_every_epochs = 1
    c.smoke = True
    return c
