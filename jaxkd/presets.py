"""Shared config presets: the papers' training protocols and data sets, and `smoke`.

The files in `configs/` (and notebooks, and users' own configs) build on these:
`from jaxkd import presets`, then e.g. `presets.cifar100_resnet(c, 56)`.

The papers' protocols: every helper edits the ConfigDict in place and returns it. The
numbers are the papers':
    [TT]  Yang et al., "Knowledge Distillation in Generations: More Tolerant Teachers
          Educate Better Students", 2018 (Experiments, "Setting and Baselines").
    [BAN] Furlanello et al., "Born-Again Neural Networks", ICML 2018 (Sec. 4: the
          Wide-ResNet protocol of Zagoruyko & Komodakis 2016).
    [SD]  Yang et al., "Snapshot Distillation: Teacher-Student Optimization in One
          Generation", CVPR 2019 (Sec. 4.1.1 CIFAR, 4.2.1 ILSVRC2012).
    [RCO] Jin et al., "Knowledge Distillation via Route Constrained Optimization",
          ICCV 2019 (Sec. 4.1 CIFAR-100, Table 3).

Fast trials: `smoke(config)` shrinks any config to a trial of about a minute on CPU.
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

CIFAR100_OFFLINE = ("--config.data.source=cifar_binary "
                    "--config.data.path=/path/cifar-100-binary.tar.gz")

# Depth -> registry name of the CIFAR DenseNet-BC models of [TT] and [SD].
CIFAR_DENSENETS = {100: "densenet_bc_100_12", 190: "densenet_bc_190_40"}


def command(name: str) -> str:
    """The command line a config's docstring gives (tests compare the two)."""
    return (f"python -m jaxkd.main --config=configs/{name}.py "
            f"--workdir=/tmp/{name}")


# -- data ------------------------------------------------------------------------------


def cifar100(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """CIFAR-100 through TFDS, fine labels, the standard pad-4 crop + flip augmentation.

    Offline: `--config.data.source=cifar_binary --config.data.path=.../cifar-100-binary.tar.gz`.
    """
    c.data.source = "tfds"
    c.data.name = "cifar100"
    c.data.label_key = "label"
    c.data.image_size = 32
    c.data.augment.kind = "cifar"
    c.data.augment.crop_padding = 4
    c.data.augment.pad_mode = "constant"
    c.data.augment.flip = True
    c.eval_batch_size = 1000         # 10 000 test images in 10 batches; splits over 8 cores
    return c


def imagenet(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """ILSVRC2012 through TFDS (`imagenet2012`, streamed), 224 x 224, random-resized crop."""
    c.data.source = "tfds"
    c.data.name = "imagenet2012"
    c.data.label_key = "label"
    c.data.image_size = 224
    c.data.augment.kind = "imagenet"
    c.data.augment.flip = True
    c.eval_batch_size = 400          # 50 000 validation images in 125 batches; 8 cores
    c.log_every_steps = 100
    return c


# -- optimiser and schedules -----------------------------------------------------------


def sgd(c: ml_collections.ConfigDict, *, weight_decay: float, nesterov: bool = True,
        momentum: float = 0.9) -> ml_collections.ConfigDict:
    c.optimizer.name = "sgd"
    c.optimizer.momentum = momentum
    c.optimizer.nesterov = nesterov
    c.optimizer.weight_decay = weight_decay
    c.optimizer.decay_mask = "all"
    return c


def step_schedule(c: ml_collections.ConfigDict, base_lr: float, boundaries: tuple,
                  factor: float = 0.1) -> ml_collections.ConfigDict:
    c.schedule.name = "step"
    c.schedule.base_lr = base_lr
    c.schedule.boundaries = tuple(boundaries)
    c.schedule.factor = factor
    c.schedule.warmup_epochs = 0
    c.schedule.cycles = 1
    return c


def cosine_schedule(c: ml_collections.ConfigDict, base_lr: float) -> ml_collections.ConfigDict:
    c.schedule.name = "cosine"
    c.schedule.base_lr = base_lr
    c.schedule.boundaries = ()
    c.schedule.warmup_epochs = 0
    c.schedule.cycles = 1
    return c


# -- the loss -----------------------------------------------------------------------


def cross_entropy(c: ml_collections.ConfigDict, *,
                  label_smoothing: float = 0.0) -> ml_collections.ConfigDict:
    """Cross-entropy with its label-smoothing knob declared (0: plain CE).

    The command line can only set fields a config declares, so declaring
    `loss.label_smoothing` is what makes `--config.loss.label_smoothing=0.1` (the LSR
    baseline, Szegedy et al. 2016) work on every config built from these protocols. The
    knob reaches the phases that train on `config.loss`: the baseline and [BAN]'s
    generation 0; the [TT] patriarch has its own (`config.tolerant_teacher.patriarch_loss`).
    """
    c.loss = ml_collections.ConfigDict(dict(name="cross_entropy",
                                            label_smoothing=label_smoothing))
    return c


# -- the papers' CIFAR-100 protocols ---------------------------------------------------


def _cifar100_sgd(c: ml_collections.ConfigDict, *, model: str, batch_size: int,
                  num_epochs: int, boundaries: tuple, schedule: str
                  ) -> ml_collections.ConfigDict:
    """CIFAR-100, CE, SGD Nesterov 0.9 with wd 1e-4 at lr 0.1: `schedule='step'` divides
    the rate by 10 at `boundaries` ([TT]), 'cosine' is [SD]'s baseline (BL) schedule."""
    cifar100(c)
    cross_entropy(c)
    c.model, c.batch_size, c.num_epochs = model, batch_size, num_epochs
    sgd(c, weight_decay=1e-4)
    if schedule == "step":
        step_schedule(c, 0.1, boundaries)
    else:
        cosine_schedule(c, 0.1)
    return c


def cifar100_resnet(c: ml_collections.ConfigDict, depth: int, *,
                    schedule: str = "step") -> ml_collections.ConfigDict:
    """[TT]/[SD] CIFAR ResNet-`depth`: SGD Nesterov 0.9, wd 1e-4, batch 128, 164 epochs, lr 0.1.

    `schedule='step'` divides the rate by 10 after epochs 82 and 123 ([TT]);
    `schedule='cosine'` is [SD]'s baseline (BL) schedule.
    """
    return _cifar100_sgd(c, model=f"resnet{depth}", batch_size=128, num_epochs=164,
                         boundaries=(82, 123), schedule=schedule)


def cifar100_densenet(c: ml_collections.ConfigDict, depth: int, *,
                      schedule: str = "step") -> ml_collections.ConfigDict:
    """[TT]/[SD] DenseNet-BC-100 (k=12) / -190 (k=40): batch 64, 300 epochs, lr 0.1, wd 1e-4.

    `schedule='step'` divides the rate by 10 after epochs 150 and 225 ([TT]);
    `schedule='cosine'` is [SD]'s baseline schedule.
    """
    return _cifar100_sgd(c, model=CIFAR_DENSENETS[depth], batch_size=64, num_epochs=300,
                         boundaries=(150, 225), schedule=schedule)


def wide_resnet_protocol(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """[BAN] Sec. 4: "the same preprocessing and training setting as for Wide-ResNet".

    Zagoruyko & Komodakis 2016: SGD Nesterov 0.9, wd 5e-4, batch 128, 200 epochs, lr 0.1
    multiplied by 0.2 at epochs 60, 120 and 160; the same pad-4 random crop + flip, but
    the padding is "filling missing pixels with reflections of original image" (WRN
    Sec. 3), so `data.augment.pad_mode='reflect'`. [BAN]'s one stated exception, "except
    for Mean-Std normalization", is not followed: jaxkd always normalises.
    """
    cifar100(c)
    c.data.augment.pad_mode = "reflect"
    cross_entropy(c)
    c.batch_size = 128
    c.num_epochs = 200
    sgd(c, weight_decay=5e-4)
    step_schedule(c, 0.1, (60, 120, 160), factor=0.2)
    return c


# -- methods ---------------------------------------------------------------------------


def tolerant_teacher(c: ml_collections.ConfigDict, *, u: float, label_weight: float,
                     generations: int, k: int = 5, patriarch_loss: str = "tolerant_teacher",
                     label_smoothing: float = 0.1,
                     beta: float = 0.1) -> ml_collections.ConfigDict:
    """[TT] process D(u, lambda) with `generations` students after the patriarch.

    `patriarch_loss='label_smoothing'` / `'confidence_penalty'` are the LSR-lambda and
    CP-lambda processes of [TT] Figure 2 and Tables 2-3. The paper gives neither eps nor
    beta: eps = 0.1 is Szegedy et al. 2016's value; beta = 0.1 is the CP loss's default
    here (Pereyra et al. 2017 tune beta per task).
    """
    c.method = "tolerant_teacher"
    c.tolerant_teacher.u = u
    c.tolerant_teacher.k = k
    c.tolerant_teacher.label_weight = label_weight
    c.tolerant_teacher.patriarch_loss = patriarch_loss
    c.tolerant_teacher.label_smoothing = label_smoothing
    c.tolerant_teacher.beta = beta
    c.generations = generations
    return c


def snapshot(c: ml_collections.ConfigDict, *, temperature: float, cycles: int = 4,
             teacher: bool = True) -> ml_collections.ConfigDict:
    """[SD] K mini-generations of cosine(0.1 -> 0) over `c.num_epochs` (already set)."""
    c.method = "snapshot_distillation" if teacher else "snapshot_ensemble"
    c.snapshot.cycles = cycles
    c.snapshot.temperature = temperature
    c.snapshot.teacher = teacher
    cosine_schedule(c, 0.1)       # what each mini-generation restarts (alpha_k = 0.1)
    return c


def rco_cifar100(c: ml_collections.ConfigDict, *, mode: str, anchor_every_epochs: int,
                 width: float, expansion: int) -> ml_collections.ConfigDict:
    """[RCO] Sec. 4.1: ResNet-50 teacher, MobileNetV2 student, CIFAR-100.

    Teacher: lr 0.05, /10 at epochs 150, 180 and 210 of 240, wd 5e-4, batch 64, SGD with
    momentum (0.9; Nesterov is not mentioned, so plain momentum). Student: the same with
    lr 0.01. KD loss with tau = 5 (lambda is not given in the paper: 1, with the usual
    tau^2 factor of Hinton et al.).

    The teacher is `resnet50` with `cifar_stem=True` (3x3 stride-1 stem, no max-pool):
    2.47 GFLOPs at 32 x 32, the 2.6k MFLOPs of [RCO] Table 2 (the ImageNet stem would
    shrink 32 x 32 inputs to 1 x 1 before the last stage). The student is
    `mobilenetv2_cifar` (total stride 16) with `round_channels=False`, which gives
    [RCO] Table 3's MFLOPs (13.5 at width 0.5 / expansion 6, 5.4 at 0.35 / 4).
    """
    cifar100(c)
    cross_entropy(c)
    c.method = "rco"
    c.model = "mobilenetv2_cifar"
    c.model_overrides = ml_collections.ConfigDict(
        dict(width=width, expansion=expansion, round_channels=False))
    c.teacher.model = "resnet50"
    c.teacher.model_overrides = ml_collections.ConfigDict(dict(cifar_stem=True))
    c.batch_size = 64
    c.num_epochs = 240
    sgd(c, weight_decay=5e-4, nesterov=False)
    step_schedule(c, 0.01, (150, 180, 210))
    c.rco.mode = mode
    c.rco.anchor_every_epochs = anchor_every_epochs
    c.rco.teacher_epochs = 240
    c.rco.teacher_lr = 0.05
    c.rco.temperature = 5.0
    c.rco.kl_weight = 1.0
    c.rco.delta = 0.8
    return c

# -- fast trials ---------------------------------------------------------------------

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


def ban_ptb_language_model(c: ml_collections.ConfigDict, *, model: str, batch_size: int,
                           lr_per_window: float, clip_per_window: float, factor: float,
                           threshold: float) -> ml_collections.ConfigDict:
    """[BAN] Sec. 4.2's PTB protocol: BAN+L, one generation after the teacher, 40 epochs of
    plain SGD over 35-token windows, the rate cut on a validation plateau.

    `lr_per_window` and `clip_per_window` are the papers' numbers for a loss summed over a
    window's tokens (Zaremba et al., Kim et al.); jaxkd's loss is the mean over tokens, so
    the same steps are lr x bptt and a clipping norm of clip / bptt. `factor` multiplies the
    rate unless the validation perplexity drops by more than `threshold` (`jaxkd.plateau`).
    """
    c.method = "born_again"
    c.born_again.variant = "ban_l"
    c.generations = 1
    c.model = model
    c.data.source = "ptb"
    c.data.bptt = 35
    c.data.augment.kind = "none"
    c.batch_size = batch_size
    c.eval_batch_size = 10
    c.num_epochs = 40
    sgd(c, weight_decay=0.0, nesterov=False, momentum=0.0)
    c.optimizer.clip_grad_norm = clip_per_window / c.data.bptt
    c.schedule.name = "plateau"
    c.schedule.base_lr = lr_per_window * c.data.bptt
    c.schedule.factor = factor
    c.schedule.plateau_threshold = threshold
    c.schedule.plateau_monitor = "perplexity"
    c.write_report = False
    return c


def smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of `config` that runs in about a minute on 2 CPU cores (see the module).

    Args:
        config: any config built from `jaxkd.config.default_config()`.

    Returns:
        A new ConfigDict; `config` itself is not changed.
    """
    c = ml_collections.ConfigDict(config.to_dict())
    # Models: one small CIFAR ResNet everywhere (teachers, the RCO teacher among them).
    c.model = SMOKE_MODEL
    c.model_overrides = ml_collections.ConfigDict()
    if c.teacher.model:
        c.teacher.model = SMOKE_MODEL
    c.teacher.model_overrides = ml_collections.ConfigDict()
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
