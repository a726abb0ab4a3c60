"""Snapshot distillation: DenseNet-BC-190 (k=40) on CIFAR-100, K = 4, T = 2.

Command:

    python -m jaxkd.main --config=configs/sd_densenet190.py --workdir=/tmp/sd_densenet190

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 10-13 h on one A100-class GPU (300
epochs of 782 steps at batch 64; mini-generations 2-4 add the teacher's forward;
`--config.dtype=bfloat16` roughly halves it).

Paper number: Yang et al., "Snapshot Distillation", Table 3, DenseNet190, SD with T = 2:
error (%) 18.98 / 17.48 / 16.32 / 18.02 at the ends of the 4 mini-generations, best 16.06
(during the third mini-generation; the paper notes the last one over-softens), ensemble
15.72. Baseline (BL, cosine) 16.82 (best 16.69); SE last 16.84 (best 16.70, ensemble 15.70).
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
    presets.cifar100_densenet(c, 190, schedule="cosine")
    presets.snapshot(c, temperature=2.0, cycles=4)
    return c
