"""Tolerant teacher D(0.6, 0.6): DenseNet-BC-100 (k=12) on CIFAR-100, 5 generations.

Command:

    python -m jaxkd.main --config=configs/tt_densenet100.py --workdir=/tmp/tt_densenet100

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 2-3 h per generation on one
A100-class GPU (300 epochs of 782 steps at batch 64), roughly 14-20 h for the 6 phases.

Paper number: Yang et al., "Knowledge Distillation in Generations", Table 4,
D(0.6,0.6) on DenseNet-100: error 23.96 (25.00 last) for the patriarch, 21.29 (21.34) at
Gen #1, best 20.51 (21.59) at Gen #2, 21.27 (21.61) at Gen #5; baseline 22.20 (22.89).
Ensembles of the last epochs: 20.20 (Gen #1) ... 17.25 (Gen #5).
Note: the paper's Gen #1 ensemble (20.20) differs from the Gen #1 model, so it includes
the patriarch; jaxkd's `bane` ensemble in results.json averages generations 1..M only.
`--config.tolerant_teacher.u=0.7` gives the D(0.7,0.6) rows: best 20.94 (21.47) at
Gen #3 (21.24 (21.50) at Gen #1), ensemble 17.23 at Gen #5.

Settings: patriarch eta * CE + (1 - eta) * TSD (K = 5, u = 0.6); generations
0.6 * CE + 0.4 * KL(teacher || student), fresh init. Each generation: SGD Nesterov 0.9,
wd 1e-4, batch 64, 300 epochs, lr 0.1 divided by 10 after epochs 150 and 225.

LSR baseline (one generation, eps = 0.1, Szegedy et al. 2016):
`--config.method=baseline --config.loss.label_smoothing=0.1`. The LSR-0.6 / CP-0.6
processes of [TT] Figure 2 and Tables 2-3 swap the patriarch:
`--config.tolerant_teacher.patriarch_loss=label_smoothing` (eps =
`tolerant_teacher.label_smoothing`, 0.1) or `=confidence_penalty` (beta =
`tolerant_teacher.beta`, 0.1); see configs/tt_resnet110_lsr.py and tt_resnet110_cp.py.
"""

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = default_config()
    presets.cifar100_densenet(c, 100, schedule="step")
    presets.tolerant_teacher(c, u=0.6, label_weight=0.6, generations=5)
    return c
