"""GPU protocol (ready to run, NOT run yet): ResNet-20/56 on full CIFAR-100, 164 epochs.

Command (one accelerator; every run is resumable, rerun the same command after a stop)::

    JAXKD_CIFAR100=/path/cifar-100-binary.tar.gz \
    python -m jaxkd.grid --grid=grids/gpu_cifar100.py \
        --root=/tmp/kd_gpu_cifar100 --seeds=3 [--only=baseline_resnet20,sd_t2_resnet20]

Data: the full CIFAR-100 training set (50 000) and test set (10 000), binary version
(`JAXKD_CIFAR100`: the `.tar.gz` or its extracted folder, faster). Pad-4 crop + flip.

Every phase follows the papers' CIFAR ResNet protocol: SGD Nesterov 0.9, wd 1e-4, batch
128, 164 epochs, lr 0.1, evaluated every epoch.
    baseline_resnetN    CE, cosine lr ([SD] BL).  [SD] Table 3 error: ResNet20 33.57,
                        ResNet56 30.23 (best 29.94).
    sd_t2_resnetN       [SD] K = 4 mini-generations of 41 epochs, cosine restarts, T = 2.
                        [SD] Table 3 last / best / ensemble error: ResNet20 32.31 / 32.31 /
                        32.08, ResNet56 29.29 / 29.22 / 28.11.
    sd_t3_resnetN       the same with T = 3: ResNet20 31.97 / 31.76 / 30.76, ResNet56
                        29.37 / 29.28 / 27.74.
    ban_resnetN         [BAN] gen0 CE then 2 born-again generations (pure KL, lambda = 0),
                        step lr /10 at epochs 82 and 123 ([TT] protocol); BANE ensemble of
                        gen1+gen2. No ResNet-20/56 number in [BAN] (its CIFAR-100 tables
                        are Wide-ResNets and DenseNets).
    tt_d06_06_resnetN   [TT] D(0.6, 0.6): TSD patriarch (u = 0.6, K = 5), 2 students with
                        lambda = 0.6, step lr. [TT] reports ResNet-110 / DenseNet only.
    tt_d10_06_resnetN   [TT] D(1.0, 0.6): CE patriarch, 2 students with lambda = 0.6.
    lsr_resnetN         label smoothing baseline (eps = 0.1), the BL schedule: the row
                        beside every self-distillation table (no paper number).
    tt_lsr_06_resnetN   [TT] LSR-0.6 (Figure 2): a label-smoothing patriarch (eps = 0.1),
                        2 students with lambda = 0.6, step lr.

Cost (an estimate, not measured): ~1 phase-equivalent each for baseline, LSR and SD, 3 for
BAN and each TT process, i.e. 15 phases of 164 epochs per (depth, seed); ResNet-20 ~10-15 min
and ResNet-56 ~25-35 min per phase on one H100-class GPU. `--seeds=1` or `--only=` to
trim.
"""

import os

from jaxkd.config import default_config

DATA = os.environ.get("JAXKD_CIFAR100", "/work/shared/data/cifar100/cifar-100-binary.tar.gz")
DEPTHS = (20, 56)


def base(depth: int, schedule: str):
    c = default_config()
    c.model = f"resnet{depth}"
    c.data.source = "cifar_binary"
    c.data.path = DATA
    c.batch_size = 128
    c.eval_batch_size = 500
    c.num_epochs = 164
    c.optimizer.name, c.optimizer.momentum, c.optimizer.nesterov = "sgd", 0.9, True
    c.optimizer.weight_decay = 1e-4
    c.schedule.base_lr = 0.1
    if schedule == "cosine":
        c.schedule.name, c.schedule.boundaries = "cosine", ()
    else:
        c.schedule.name, c.schedule.boundaries, c.schedule.factor = "step", (82, 123), 0.1
    c.progress_bar = False
    c.write_report = False       # the harness reports after the grid
    return c


def get_grid():
    grid = {}
    for depth in DEPTHS:
        grid[f"baseline_resnet{depth}"] = base(depth, "cosine")
        c = base(depth, "cosine")
        c.loss.label_smoothing = 0.1
        grid[f"lsr_resnet{depth}"] = c
        for t in (2.0, 3.0):
            c = base(depth, "cosine")
            c.method = "snapshot_distillation"
            c.snapshot.cycles, c.snapshot.temperature = 4, t   # cycles restart at base_lr
            grid[f"sd_t{int(t)}_resnet{depth}"] = c
        c = base(depth, "step")
        c.method, c.generations, c.born_again.variant = "born_again", 2, "ban"
        grid[f"ban_resnet{depth}"] = c
        for name, u in (("tt_d06_06", 0.6), ("tt_d10_06", 1.0)):
            c = base(depth, "step")
            c.method, c.generations = "tolerant_teacher", 2
            c.tolerant_teacher.u, c.tolerant_teacher.k = u, 5
            c.tolerant_teacher.label_weight = 0.6
            grid[f"{name}_resnet{depth}"] = c
        c = base(depth, "step")
        c.method, c.generations = "tolerant_teacher", 2
        c.tolerant_teacher.patriarch_loss, c.tolerant_teacher.label_smoothing = (
            "label_smoothing", 0.1)
        c.tolerant_teacher.label_weight = 0.6
        grid[f"tt_lsr_06_resnet{depth}"] = c
    return grid
