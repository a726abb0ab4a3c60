"""Tolerant teacher D(0.6, 0.6): ResNet-110 on CIFAR-100, a TSD patriarch and 10 generations.

Command:

    python -m jaxkd.main --config=configs/tt_resnet110.py --workdir=/tmp/tt_resnet110

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 0.5-1 h per generation on one
A100-class GPU, students ~25% more for the teacher's forward pass: roughly 8-14 h for the
11 phases (patriarch + 10 students). `--config.generations=5` stops after five students;
`generations` may be raised later on the same workdir (finished phases are kept).

Paper number: Yang et al., "Knowledge Distillation in Generations", Table 2, row TSD-0.6:
best test accuracy over the generations 73.72% (vs 72.61% for the born-again process with
a one-hot patriarch, configs/ban_resnet110.py). Table 3 gives the training-set top-1
confidence per generation (Gen #0 66.51% rising to 91.72% at Gen #5), a check for the
secondary-information analysis.

Settings: patriarch loss eta * CE + (1 - eta) * TSD with K = 5 and u = 0.6 (eta = 3/7);
generation m: lambda * CE + (1 - lambda) * KL(teacher || student) with lambda = 0.6,
teacher = generation m-1, fresh init. Each generation: SGD Nesterov 0.9, wd 1e-4, batch
128, 164 epochs, lr 0.1 divided by 10 after epochs 82 and 123, pad-4 crop + flip.
The paper reports the best over "10 generations"; whether that counts the patriarch is not
said, so this runs 10 students after it (one more than the other reading).

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
    presets.cifar100_resnet(c, 110, schedule="step")
    presets.tolerant_teacher(c, u=0.6, label_weight=0.6, generations=10)
    return c
