"""Born-again networks: Wide-ResNet-28-10 on CIFAR-100, a teacher and one BAN student.

Command:

    python -m jaxkd.main --config=configs/ban_wrn28_10.py --workdir=/tmp/ban_wrn28_10

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 2 h for the teacher and 2.5 h for
the student on one A100-class GPU (9.5 GFLOPs per image forward, 200 epochs each).

Paper number: Furlanello et al., "Born-Again Neural Networks", Table 3, Wide-ResNet-28-10:
teacher 19.08% error, BAN 18.25% (and 16.79% for a DenseNet-90-60 student of this
teacher, the Table 3 right column; see configs/ban_densenet_to_resnet.py for the other
direction).

Settings: the Wide-ResNet protocol of Zagoruyko & Komodakis 2016 that [BAN] Sec. 4
adopts: SGD Nesterov 0.9, wd 5e-4, batch 128, 200 epochs, lr 0.1 multiplied by 0.2 at
epochs 60, 120 and 160; pad-4 random crop (missing pixels filled with reflections,
`data.augment.pad_mode='reflect'`, as the WRN paper) + flip; dropout 0.3 in the residual blocks ([BAN]: "in the case of
Wide-ResNet drop-out"; the rate is the WRN paper's). The student learns from the
teacher's outputs only (`born_again.variant='ban'`), fresh init, same schedule.

LSR baseline (no LSR row in [BAN]; independent reproductions find label smoothing
often matches born-again gains): `--config.method=baseline --config.loss.label_smoothing=0.1`
trains `model` once on labels smoothed with eps = 0.1 (Szegedy et al. 2016), same
protocol.
"""

import ml_collections

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = default_config()
    presets.wide_resnet_protocol(c)
    c.method = "born_again"
    c.model = "wrn_28_10"
    c.model_overrides = ml_collections.ConfigDict(dict(dropout_rate=0.3))
    c.born_again.variant = "ban"
    c.generations = 1
    return c
