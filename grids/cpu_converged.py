"""CPU protocol at convergence: the papers' effects where the baseline has converged.

Issue 18, part 2. The 2-epoch grid (`grids/cpu_cifar100.py`) left every network near 8%
top-1, far from convergence. Here each phase trains long enough on its data for the curve
to flatten and the training accuracy to pass the test accuracy by far, within about 80
minutes of 2 CPU cores for everything, by making the images smaller instead of the
schedule shorter.

Command (see RESULTS.md for the measured wall time)::

    JAXKD_CIFAR100=/path/cifar-100-binary \
    python -m jaxkd.grid --grid=grids/cpu_converged.py \
        --root=/work/kd_runs/cpu_converged --seeds=3

Data: real CIFAR-100 (binary version), all 100 classes, downsampled to 16 x 16 (bilinear,
`data.image_size = 16`; crop padding 2 instead of 4, the same quarter of the side as 4 of
32). Training set: a stratified subset of TRAIN_PER_CLASS images per class drawn with the
run's seed; test set: the full 10 000 test images (downsampled the same way).

Schedule (every phase): EPOCHS epochs, batch 64, SGD Nesterov 0.9, wd 5e-4, one cosine
cycle from lr 0.1 to 0, pad-2 crop + flip, test evaluation every EVAL_EVERY epochs. SD:
K = 4 cycles of EPOCHS / 4 epochs, each restarting the cosine at 0.1. Sized from measured
2-epoch runs of ResNet-8 on 10 000 images (2 100 img/s at 16 x 16 against 600 img/s at
32 x 32, one run on 2 devices).

Configs (the seeds of each train packed, `config.num_seeds = 3`):
    born_again     gen0 = CE baseline, gen1 and gen2 = BAN students (pure KL to the
                   previous generation, [BAN] Sec. 3.1); the BANE ensembles of generations
    label_smoothing  the baseline with CE on labels smoothed by eps = 0.1 ([TT] Table 2, LSR)
    sd_k4_t2       snapshot distillation, K = 4, T = 2 ([SD] Eqn 3), and the ensemble of
                   its 4 snapshots
    tt_d06_06      [TT] D(0.6, 0.6): TSD patriarch (u = 0.6, K = 5), 1 student, lambda 0.6
    tt_d10_06      [TT] D(1.0, 0.6): CE patriarch (phase gen0 of born_again computed again,
                   a determinism check), 1 student with lambda = 0.6
    kd_resnet20    Hinton KD (RCO mode 'kd', T = 5, lambda = 1) into ResNet-8 from a
                   ResNet-20 teacher trained for the same EPOCHS
"""

import os

from jaxkd import presets
from jaxkd.config import default_config

DATA = os.environ.get("JAXKD_CIFAR100", "/work/shared/data/cifar100/cifar-100-binary.tar.gz")
TRAIN_PER_CLASS = 50
EPOCHS = 32
EVAL_EVERY = 8


def base(train_per_class: int = TRAIN_PER_CLASS, epochs: int = EPOCHS,
         eval_every: int = EVAL_EVERY):
    """Every config's common settings (the sizes are parameters for
    grids/cpu_converged_long.py)."""
    c = default_config()
    c.model = "resnet8"
    c.data.source = "cifar_binary"
    c.data.path = DATA
    c.data.train_per_class = train_per_class
    c.data.image_size = 16
    c.data.augment.crop_padding = 2
    c.batch_size = 64
    c.eval_batch_size = 1000
    c.num_epochs = epochs
    c.eval_every_epochs = eval_every
    c.optimizer.weight_decay = 5e-4
    c.schedule.name = "cosine"
    c.schedule.base_lr = 0.1
    c.schedule.boundaries = ()
    c.progress_bar = False
    c.write_report = False       # the harness writes the reports after the grid
    c.log_every_steps = train_per_class * 100 // c.batch_size   # one line per epoch
    return c


def get_grid(**sizes):
    """The configs; `sizes`: `base`'s train_per_class, epochs and eval_every."""
    grid = {}
    epochs = sizes.get("epochs", EPOCHS)

    c = base(**sizes)
    c.method, c.generations, c.born_again.variant = "born_again", 2, "ban"
    grid["born_again"] = c

    c = base(**sizes)
    c.method, c.loss.label_smoothing = "baseline", 0.1
    grid["label_smoothing"] = c

    c = presets.snapshot(base(**sizes), temperature=2.0, cycles=4)   # each restarts at 0.1
    grid["sd_k4_t2"] = c

    for name, u in (("tt_d06_06", 0.6), ("tt_d10_06", 1.0)):
        grid[name] = presets.tolerant_teacher(base(**sizes), u=u, label_weight=0.6, generations=1)

    c = base(**sizes)
    c.method = "rco"
    c.rco.mode = "kd"
    c.teacher.model = "resnet20"          # the RCO teacher (mode 'kd': its last epoch)
    c.rco.teacher_epochs = epochs
    c.rco.anchor_every_epochs = epochs
    c.rco.teacher_lr = 0.1
    c.rco.temperature, c.rco.kl_weight = 5.0, 1.0
    grid["kd_resnet20"] = c
    return grid


#: Paired comparisons of RESULTS.md (`python -m experiments.paired --root=ROOT
#: --pairs=grids/cpu_converged.py`): (label, a, b), each row a - b per seed.
PAIRS = [
    ("BAN gen1 − gen0 (the CE baseline)", "born_again/gen1", "born_again/gen0"),
    ("BAN gen2 − gen0", "born_again/gen2", "born_again/gen0"),
    ("BANE (gen1+gen2) − gen0", "born_again/ensemble:bane", "born_again/gen0"),
    ("label smoothing − baseline", "label_smoothing/baseline", "born_again/gen0"),
    ("SD end (cycle 4) − baseline", "sd_k4_t2/cycle4", "born_again/gen0"),
    ("SD ensemble (T-scaled) − baseline", "sd_k4_t2/ensemble:sd_ensemble", "born_again/gen0"),
    ("SD end − its snapshot ensemble (equal weights)", "sd_k4_t2/cycle4",
     "sd_k4_t2/ensemble:snapshot_ensemble"),
    ("TT D(0.6,0.6) gen1 − D(1.0,0.6) gen1", "tt_d06_06/gen1", "tt_d10_06/gen1"),
    ("TT D(0.6,0.6) patriarch − CE patriarch", "tt_d06_06/gen0", "tt_d10_06/gen0"),
    ("TT D(1.0,0.6) gen1 − its CE patriarch", "tt_d10_06/gen1", "tt_d10_06/gen0"),
    ("TT D(0.6,0.6) gen1 − baseline", "tt_d06_06/gen1", "born_again/gen0"),
    ("KD student (ResNet-20 teacher) − baseline", "kd_resnet20/stage1", "born_again/gen0"),
    ("ResNet-20 teacher − ResNet-8 baseline", "kd_resnet20/teacher", "born_again/gen0"),
    ("born_again/gen0 − tt_d10_06/gen0 (one phase twice: 0 = deterministic)",
     "born_again/gen0", "tt_d10_06/gen0"),
]
