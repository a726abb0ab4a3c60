"""Baseline: ResNet-110 on CIFAR-100 with cross-entropy, one generation ([TT] D(1.0, 0.0)).

Command:

    python -m jaxkd.main --config=configs/baseline_resnet110.py --workdir=/tmp/baseline_resnet110

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 0.5-1 h on one A100-class GPU
(164 epochs of 391 steps; 0.49 GFLOPs per 32x32 image forward).

Paper number: Yang et al., "Knowledge Distillation in Generations" (tolerant teacher),
Table 1, Gen #0 (a ResNet-110 trained on one-hot labels): 71.55% test top-1 (99.74% train).
With `--config.schedule.name=cosine` this is the BL row of Snapshot Distillation Table 3:
28.77% error at the last epoch, 28.53% at the best.

Settings ([TT] "Setting and Baselines"): SGD, Nesterov momentum 0.9, weight decay 1e-4,
batch 128, 164 epochs, learning rate 0.1 divided by 10 after epochs 82 and 123, pad-4
random crop + horizontal flip.

LSR baseline: `--config.loss.label_smoothing=0.1` (eps = 0.1, Szegedy et al. 2016)
smooths the labels of this one run.
"""

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = default_config()
    c.method = "baseline"
    presets.cifar100_resnet(c, 110, schedule="step")
    c.loss.name = "cross_entropy"
    return c
