"""RCO Table 6's RL row: the MobileNetV2 student mimics its ResNet-50 teacher's every iteration.

Command:

    python -m jaxkd.main --config=configs/rco_rl_mobilenetv2.py --workdir=/tmp/rco_rl_mobilenetv2

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 1.5-2 h on one A100-class GPU (240
epochs of 782 steps; each step trains the ResNet-50 and the student).

Paper number: Jin et al., "Knowledge Distillation via Route Constrained Optimization",
Table 6 (240 epochs, MobileNetV2 expansion 4, width 0.35): RL (M_gap = 1.28e-3 epochs,
187 500 anchors) 61.63% top-1, vs one-stage RCO at M_gap = 10 65.01% and KD 60.79%.

Settings ([RCO] Sec. 4.1, 4.4): an anchor at every iteration means the student learns
from the teacher's state at that iteration. Kept as anchors that would be 187 500
checkpoints of a ResNet-50; here teacher and student train side by side in one program
(`rco.mode='online'`, the zoo's `route_pair`, loss 'online_route'): the same batches,
the teacher on CE with its own lr 0.05 (`optimizer.lr_scales.teacher` = 5 times the
student's 0.01), the student on CE + tau^2 * KL(softmax(t/tau) || softmax(z/tau)) from
the teacher's logits of the same forward pass (tau = 5), both /10 at epochs 150, 180,
210 of 240, wd 5e-4, batch 64, SGD momentum 0.9. Teacher `resnet50` with
`cifar_stem=True`, student `mobilenetv2_cifar` (0.35 / 4, `round_channels=False`).
Deviation: the teacher's logits come from its training-mode forward (batch statistics),
where a stored anchor would run in inference mode. The results report the student (the
pair's inference output).
"""

import ml_collections

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = default_config()
    presets.rco_cifar100(c, mode="online", anchor_every_epochs=10, width=0.35, expansion=4)
    c.optimizer.lr_scales = ml_collections.ConfigDict({"teacher": 5.0})
    return c
