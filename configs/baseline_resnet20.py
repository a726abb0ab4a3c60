"""Baseline: ResNet-20 on CIFAR-100 with cross-entropy and a cosine learning rate ([SD] BL).

Command:

    python -m jaxkd.main --config=configs/baseline_resnet20.py --workdir=/tmp/baseline_resnet20

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 10-20 min on one A100-class GPU
(164 epochs of 391 steps; 0.08 GFLOPs per image forward, step-overhead bound).

Paper number: Yang et al., "Snapshot Distillation", Table 3, ResNet20 BL: 33.57% error
(66.43% top-1) at the last (= best) epoch. It is the baseline that configs/sd_resnet20.py
(31.97% with T = 3) improves on.

Settings ([SD] Sec. 4.1.1): SGD, Nesterov momentum 0.9, weight decay 1e-4, batch 128,
164 epochs, cosine annealing from 0.1 to 0 over the whole run (no restarts), pad-4 random
crop + flip. `--config.schedule.name=step` gives the [TT] schedule (/10 at 82 and 123).

LSR baseline: `--config.loss.label_smoothing=0.1` (eps = 0.1, Szegedy et al. 2016)
smooths the labels of this one run.
"""

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = default_config()
    c.method = "baseline"
    presets.cifar100_resnet(c, 20, schedule="cosine")
    c.schedule.boundaries = (82, 123)    # unused by 'cosine'; kept for --config.schedule.name=step
    c.loss.name = "cross_entropy"
    return c
