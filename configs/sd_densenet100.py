"""Snapshot distillation: DenseNet-BC-100 (k=12) on CIFAR-100, K = 4, T = 3.

Command:

    python -m jaxkd.main --config=configs/sd_densenet100.py --workdir=/tmp/sd_densenet100

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 3-4 h on one A100-class GPU (300
epochs of 782 steps at batch 64; mini-generations 2-4 add the teacher's forward).

Paper number: Yang et al., "Snapshot Distillation", Table 3, DenseNet100, SD with T = 3:
error (%) 24.31 / 23.19 / 21.60 / 21.17 at the ends of the 4 mini-generations, best 21.17,
ensemble 19.71. Baseline (BL, cosine) 22.49 (best 22.00); SE last 22.18 (ensemble 19.63).
`--config.snapshot.temperature=2.0`: last 21.78, best 21.59, ensemble 20.27.
results.json: `sd_ensemble` scales the k-th snapshot's logits by T^(k-1) as the paper.

Settings ([SD] Sec. 4.1.1): SGD Nesterov 0.9, wd 1e-4, batch 64, 300 epochs split into
K = 4 mini-generations of 75 epochs (boundaries 75/150/225); each restarts a cosine
learning rate at alpha_k = 0.1 (Eqn 5). Mini-generation k >= 2 continues the weights and
learns from the snapshot at the end of k-1 with (1 + 1/T) * CE + KL(softmax(t/T) ||
softmax(z)) (Eqn 3, asymmetric). Pad-4 random crop + flip.

LSR baseline (no LSR row in the paper; independent reproductions find label smoothing
often matches self-distillation): `--config.method=baseline --config.loss.label_smoothing=0.1`
trains the BL row once (one cosine run over all epochs, no restarts, no teacher) on
labels smoothed with eps = 0.1 (Szegedy et al. 2016).
"""

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = default_config()
    presets.cifar100_densenet(c, 100, schedule="cosine")
    presets.snapshot(c, temperature=3.0, cycles=4)
    return c
