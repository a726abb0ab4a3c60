"""Tolerant-teacher baseline LSR-0.6: ResNet-110 on CIFAR-100, a label-smoothing patriarch.

Command:

    python -m jaxkd.main --config=configs/tt_resnet110_lsr.py --workdir=/tmp/tt_resnet110_lsr

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 0.5-1 h per generation on one
A100-class GPU, students ~25% more for the teacher's forward pass: roughly 8-14 h for the
11 phases (patriarch + 10 students). `--config.generations=5` stops after the five
students of Table 3.

Paper number: Yang et al., "Knowledge Distillation in Generations", Table 2, row LSR:
best test accuracy over the generations 73.46% (TSD-0.6 73.72%, configs/tt_resnet110.py;
the one-hot BL 72.61%, configs/ban_resnet110.py); features of the LSR patriarch
Dist^C / Dist^S 0.6182 / 0.5475 on the training set, 0.4875 / 0.4805 on the test set
(`jaxkd.secondary`). Table 3, row LSR, training-set top-1 confidence per generation:
89.41% (Gen #0), 92.09, 93.78, 94.89, 95.73, 95.91% (Gen #5): it rises, as for the TSD
patriarch. Figure 2 draws LSR-0.6 for ResNet-20, -56 and -110 (`--config.model=resnet20`,
`--config.model=resnet56`); its values are only plotted.

Settings: the patriarch (Gen #0) minimises CE with label smoothing,
(1 - eps) * CE(z, y) + eps * CE(z, uniform), eps = `tolerant_teacher.label_smoothing`
= 0.1 (the paper gives no eps; 0.1 is Szegedy et al. 2016's). Generation m:
lambda * CE + (1 - lambda) * KL(teacher || student), lambda = 0.6, teacher = generation
m-1, fresh init. Each generation: SGD Nesterov 0.9, wd 1e-4, batch 128, 164 epochs, lr 0.1
divided by 10 after epochs 82 and 123, pad-4 crop + flip. results.json's `tt_ensemble`
averages the patriarch and every generation ([TT] Table 4's ensembles).

LSR baseline: `--config.method=baseline --config.loss.label_smoothing=0.1` is one
generation of label smoothing alone (the same network as this patriarch, trained on
`config.loss`); `--config.generations=0` runs this config's patriarch alone.
"""

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = default_config()
    presets.cifar100_resnet(c, 110, schedule="step")
    presets.tolerant_teacher(c, u=0.6, label_weight=0.6, generations=10,
                            patriarch_loss="label_smoothing", label_smoothing=0.1)
    return c
