"""RCO with greedy anchor search (Algorithm 2, delta = 0.8): ResNet-50 -> MobileNetV2, CIFAR-100.

Command:

    python -m jaxkd.main --config=configs/rco_greedy_mobilenetv2.py --workdir=/tmp/rco_greedy_mobilenetv2

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.
10 000 training images are held out (stratified, `data.heldout_size`) as the set X' on
which the KL divergences H_j of Algorithm 2 are measured.

Expected wall time (an estimate, not measured): about 1-1.5 h for the teacher and 1 h for
the student on one A100-class GPU, plus up to ~1 h for the anchor search (at each of the
24 stage boundaries every anchor checkpoint is loaded and run on the 10 000 held-out
images).

Paper number: Jin et al., "Knowledge Distillation via Route Constrained Optimization",
Table 2 (MobileNetV2, expansion 6, width 0.5, 13.5 MFLOPs): RCO 70.85% top-1 vs KD 68.71%
and the student on labels alone 61.88%; teacher ResNet-50 79.34%. Those RCO numbers come
from greedy search with a full schedule per chosen anchor ("about 4 anchor points"; GS
totals 720 epochs in Table 7, 65.41% for the 0.35/4 student). In jaxkd the greedy route
runs inside one 240-epoch schedule (24 stages of 10 epochs, each stage's anchor chosen by
Algorithm 2 among the 24 anchors kept every 10 epochs), so expect a result between
one-stage EEI and the paper's GS figure.

Settings ([RCO] Sec. 3.5, 4.1): teacher CE, 240 epochs, lr 0.05 /10 at 150/180/210, wd
5e-4, batch 64, SGD momentum 0.9; student the same with lr 0.01 and CE + tau^2 * KL at
tau = 5; delta = 0.8. Teacher `resnet50` with `cifar_stem=True` (2.47 GFLOPs, the
paper's 2.6k MFLOPs); student `mobilenetv2_cifar`, width 0.5, expansion 6,
`round_channels=False` (13.5 MFLOPs as Table 3).
Deviation: jaxkd carves X' out of the training set, so teacher and student train on
40 000 images; the paper samples X' from the training set and does not say it removes it.
"""

from jaxkd import protocols as common
from jaxkd.config import default_config


def get_config():
    c = default_config()
    common.rco_cifar100(c, mode="greedy", anchor_every_epochs=10, width=0.5, expansion=6)
    c.rco.delta = 0.8
    c.data.heldout_size = 10000
    return c
