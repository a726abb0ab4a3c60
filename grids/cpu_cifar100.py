"""CPU protocol: the four papers' effects at a tiny budget, ResNet-8 on a CIFAR-100 subset.

Command (2 shared CPU cores; see RESULTS.md for the measured wall time)::

    JAXKD_CIFAR100=/path/cifar-100-binary \
    python -m jaxkd.grid --grid=grids/cpu_cifar100.py \
        --root=/work/kd_runs/cpu_cifar100 --seeds=3

Data: real CIFAR-100 (binary version). Training set: a stratified subset of
TRAIN_PER_CLASS images per class drawn with the run's seed (`data.train_per_class`); test
set: the full 10 000 test images. `JAXKD_CIFAR100` may name the `.tar.gz` (default, the
shared copy) or its extracted folder: reading the extracted folder takes ~2 s instead of
~50 s of streaming decompression per run. The path is part of each workdir's config.json,
so resume with the same value.

Schedule (every phase): EPOCHS epochs, batch 64, SGD Nesterov 0.9, wd 5e-4, one cosine
cycle from lr 0.1, pad-4 crop + flip, evaluated on the test set at the end of each phase
(so a phase's best top-1 equals its last). Sized from a measured 2-epoch ResNet-8 run
(~45 s per epoch of 5 000 images + ~20 s per test evaluation on the loaded machine).

Configs (the baseline is phase `gen0` of `born_again`: the same plan phase as
`method='baseline'` — same init key, data order, loss and schedule — so it is not run twice;
`tt_d10_06/gen0` is that same phase again, a determinism check):
    born_again     gen0 = CE baseline, gen1 = born-again student (BAN, pure KL to gen0)
    sd_k2_t2       snapshot distillation, K = 2 mini-generations, T = 2 ([SD] Eqn 3)
    tt_d06_06      tolerant teacher D(0.6, 0.6): TSD patriarch (u=0.6, K=5), 1 student
    tt_d10_06      D(1.0, 0.6): CE patriarch, 1 student with lambda = 0.6
    kd_resnet14    Hinton KD (RCO mode 'kd', T = 5, lambda = 1) from a ResNet-14 teacher
                   trained for the same EPOCHS
"""

import os

from jaxkd import presets
from jaxkd.config import default_config

DATA = os.environ.get("JAXKD_CIFAR100", "/work/shared/data/cifar100/cifar-100-binary.tar.gz")
TRAIN_PER_CLASS = 50
EPOCHS = 2


def base():
    c = default_config()
    c.model = "resnet8"
    c.data.source = "cifar_binary"
    c.data.path = DATA
    c.data.train_per_class = TRAIN_PER_CLASS
    c.batch_size = 64
    c.eval_batch_size = 1000
    c.num_epochs = EPOCHS
    c.eval_every_epochs = EPOCHS
    c.optimizer.weight_decay = 5e-4
    c.schedule.name = "cosine"
    c.schedule.base_lr = 0.1
    c.schedule.boundaries = ()
    c.progress_bar = False
    c.write_report = False       # the harness writes the reports after the grid
    c.log_every_steps = 50
    return c


def get_grid():
    grid = {}

    c = base()
    c.method, c.generations, c.born_again.variant = "born_again", 1, "ban"
    grid["born_again"] = c

    c = presets.snapshot(base(), temperature=2.0, cycles=2)   # each restarts at 0.1
    grid["sd_k2_t2"] = c

    for name, u in (("tt_d06_06", 0.6), ("tt_d10_06", 1.0)):
        grid[name] = presets.tolerant_teacher(base(), u=u, label_weight=0.6, generations=1)

    c = base()
    c.method = "rco"
    c.rco.mode = "kd"
    c.teacher.model = "resnet14"          # the RCO teacher (mode 'kd': its last epoch)
    c.rco.teacher_epochs = EPOCHS
    c.rco.anchor_every_epochs = EPOCHS
    c.rco.teacher_lr = 0.1
    c.rco.temperature, c.rco.kl_weight = 5.0, 1.0
    grid["kd_resnet14"] = c
    return grid
