"""RCO with greedy anchor search (Algorithm 2, delta = 0.8): ResNet-50 -> MobileNetV2, CIFAR-100.

Command:

    python -m jaxkd.main --config=configs/rco_greedy_mobilenetv2.py --workdir=/tmp/rco_greedy_mobilenetv2

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.
X', the set on which the KL divergences H_j of Algorithm 2 are measured, is 10 000
training images sampled stratified (`data.heldout_size`). The paper says only that X' is
"random sampled from training set"; by default they stay in training
(`data.heldout_mode='sample'`), so teacher and student train on all 50 000 images like
the other rows of Table 2. The other reading, X' held out of training (40 000 left):
`--config.data.heldout_mode=carve`.

Algorithm 2 as in the paper: multi-stage, each chosen anchor trained with a full
240-epoch schedule, starting from the first anchor (epoch 10); after each stage the
greedy rule picks the next anchor among the 24 kept every 10 epochs, and the run ends
after the stage that learned the converged teacher (epoch 240). The number of stages
follows from the data (the paper: "about 4 anchor points"; Table 7's GS totals 720
epochs, i.e. 3 stages); the plan lists up to 24 and `rco_route.json` records the route.

Expected wall time (an estimate, not measured): about 1-1.5 h for the teacher and 1 h per
student stage on one A100-class GPU (3-4 stages), plus a few minutes per stage boundary
for the anchor search (the student and the candidate anchors run on the 10 000 held-out
images).

Paper number: Jin et al., "Knowledge Distillation via Route Constrained Optimization",
Table 2 (MobileNetV2, expansion 6, width 0.5, 13.5 MFLOPs): RCO 70.85% top-1 vs KD 68.71%
and the student on labels alone 61.88%; teacher ResNet-50 79.34%. Table 7's GS row
(65.41% for the 0.35/4 student): `--config.model_overrides.width=0.35
--config.model_overrides.expansion=4`.

Settings ([RCO] Sec. 3.5, 4.1): teacher CE, 240 epochs, lr 0.05 /10 at 150/180/210, wd
5e-4, batch 64, SGD momentum 0.9; student the same with lr 0.01 and CE + tau^2 * KL at
tau = 5; delta = 0.8. Teacher `resnet50` with `cifar_stem=True` (2.47 GFLOPs, the
paper's 2.6k MFLOPs); student `mobilenetv2_cifar`, width 0.5, expansion 6,
`round_channels=False` (13.5 MFLOPs as Table 3).
Deviation: where r_{i,i+1} > delta already, Algorithm 2 returns i (the anchor just
learned); jaxkd advances to i+1 so that the route ends (`jaxkd.rco.greedy_next_anchor`).
"""

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = default_config()
    presets.rco_cifar100(c, mode="greedy", anchor_every_epochs=10, width=0.5, expansion=6)
    c.rco.delta = 0.8
    c.data.heldout_size = 10000
    c.data.heldout_mode = "sample"
    return c
