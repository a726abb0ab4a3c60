"""Plain knowledge distillation (RCO's KD baseline): ResNet-50 -> MobileNetV2 on CIFAR-100.

Command:

    python -m jaxkd.main --config=configs/kd_mobilenetv2.py --workdir=/tmp/kd_mobilenetv2

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 1-1.5 h for the ResNet-50 teacher
plus about 1 h for the student on one A100-class GPU; about 1 h with an existing teacher
(`--config.rco.teacher_workdir=/tmp/rco_mobilenetv2`, whose anchors include epoch 240).

Paper number: Jin et al., "Knowledge Distillation via Route Constrained Optimization",
Table 2 (MobileNetV2, expansion 6, width 0.5): S-KD 68.71% top-1 (S-Softmax 61.88%,
teacher ResNet-50 79.34%). With `--config.model_overrides.width=0.35
--config.model_overrides.expansion=4` it is the KD row of Tables 6 and 7: 60.79%.

Settings ([RCO] Sec. 4.1): RCO mode 'kd' = only the converged teacher (M_gap = E = 240):
the student learns for 240 epochs from the epoch-240 teacher with CE + tau^2 *
KL(softmax(t/tau) || softmax(z/tau)), tau = 5. Teacher CE, lr 0.05, student lr 0.01,
both /10 at epochs 150, 180 and 210, wd 5e-4, batch 64, SGD momentum 0.9. Teacher
`resnet50` with `cifar_stem=True` (2.47 GFLOPs, the paper's 2.6k MFLOPs); student
`mobilenetv2_cifar` with `round_channels=False` (13.5 MFLOPs as Table 3).
"""

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = default_config()
    presets.rco_cifar100(c, mode="kd", anchor_every_epochs=240, width=0.5, expansion=6)
    return c
