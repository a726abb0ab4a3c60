"""Tolerant-teacher baseline CP-0.6: ResNet-110 on CIFAR-100, a confidence-penalty patriarch.

Command:

    python -m jaxkd.main --config=configs/tt_resnet110_cp.py --workdir=/tmp/tt_resnet110_cp

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 0.5-1 h per generation on one
A100-class GPU, students ~25% more for the teacher's forward pass: roughly 8-14 h for the
11 phases (patriarch + 10 students). `--config.generations=5` stops after the five
students of Table 3.

Paper number: Yang et al., "Knowledge Distillation in Generations", Table 2, row CP: best
test accuracy over the generations 72.86% (TSD-0.6 73.72%, configs/tt_resnet110.py; LSR
73.46%, configs/tt_resnet110_lsr.py; the one-hot BL 72.61%, configs/ban_resnet110.py);
features of the CP patriarch Dist^C / Dist^S 0.3829 / 0.4114 on the training set,
0.3267 / 0.3815 on the test set ("CP does not behave much differently" from BL). Table 3,
row CP, training-set top-1 confidence per generation: 99.07% (Gen #0), 98.25, 97.93,
97.66, 97.47, 97.01% (Gen #5): it falls, as for BAN. Figure 2 draws CP-0.6 for ResNet-20,
-56 and -110 (`--config.model=resnet20`, `--config.model=resnet56`); its values are only
plotted.

Settings: the patriarch (Gen #0) minimises CE(z, y) - beta * H(softmax(z)) (Pereyra et al.
2017), beta = `tolerant_teacher.beta` = 0.1 (the paper gives no beta). Generation m:
lambda * CE + (1 - lambda) * KL(teacher || student), lambda = 0.6, teacher = generation
m-1, fresh init. Each generation: SGD Nesterov 0.9, wd 1e-4, batch 128, 164 epochs, lr 0.1
divided by 10 after epochs 82 and 123, pad-4 crop + flip. results.json's `tt_ensemble`
averages the patriarch and every generation.

LSR baseline: `--config.method=baseline --config.loss.label_smoothing=0.1` (one
generation, eps = 0.1); `--config.generations=0` runs the CP patriarch alone, the CP
baseline.
"""

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = default_config()
    presets.cifar100_resnet(c, 110, schedule="step")
    presets.tolerant_teacher(c, u=0.6, label_weight=0.6, generations=10,
                            patriarch_loss="confidence_penalty", beta=0.1)
    return c
