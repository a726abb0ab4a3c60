"""Born-again process D(1.0, 0.6): ResNet-110 on CIFAR-100, one-hot patriarch, 10 generations.

Command:

    python -m jaxkd.main --config=configs/ban_resnet110.py --workdir=/tmp/ban_resnet110

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 0.5-1 h per generation on one
A100-class GPU, roughly 8-14 h for the 11 phases. `--config.generations=5` for five.

Paper number: Yang et al., "Knowledge Distillation in Generations", Table 2, row BL (the
born-again baseline of Furlanello et al. with lambda = 0.6): best test accuracy over the
generations 72.61%, which the tolerant patriarch (configs/tt_resnet110.py) raises to
73.72%. Table 1 lists a born-again ResNet-110 process per generation (Gen #0 71.55%,
Gen #4 72.52% test) and Table 3 row BAN the training top-1 confidences (99.28% -> 97.76%).

Settings: this is the [TT] process D(u=1.0, lambda=0.6): the patriarch is trained with
plain cross-entropy (u = 1), every later generation with 0.6 * CE + 0.4 * KL(teacher ||
student) from a fresh init; same schedule each generation: SGD Nesterov 0.9, wd 1e-4,
batch 128, 164 epochs, lr 0.1 divided by 10 after epochs 82 and 123.
`--config.tolerant_teacher.label_weight=0.5` gives D(1.0, 0.5), the setting [TT] calls
born-again networks in its text.

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
    presets.tolerant_teacher(c, u=1.0, label_weight=0.6, generations=10)
    return c
