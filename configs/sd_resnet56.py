"""Snapshot distillation: ResNet-56 on CIFAR-100, K = 4 mini-generations, T = 2.

Command:

    python -m jaxkd.main --config=configs/sd_resnet56.py --workdir=/tmp/sd_resnet56

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 30-45 min on one A100-class GPU
(164 epochs of 391 steps; mini-generations 2-4 add the teacher snapshot's forward pass).

Paper number: Yang et al., "Snapshot Distillation", Table 3, ResNet56, SD with T = 2 (the
better of T = 2 and 3 at the last epoch): error (%) 32.85 / 30.47 / 29.72 / 29.29, best
29.22, ensemble 28.11. Baseline (BL, cosine, one run) 30.23 (best 29.94); snapshot ensemble
SE last 29.68 (ensemble 27.93). Other temperature, `--config.snapshot.temperature=3.0`: T =
3: last 29.37, best 29.28, ensemble 27.74.
results.json: `sd_ensemble` scales the k-th snapshot's logits by T^(k-1) as the paper.

Settings ([SD] Sec. 4.1.1): SGD Nesterov 0.9, wd 1e-4, batch 128, 164 epochs split into
K = 4 mini-generations of 41 epochs (boundaries 41/82/123); each restarts a cosine
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
    presets.cifar100_resnet(c, 56, schedule="cosine")
    presets.snapshot(c, temperature=2.0, cycles=4)
    return c
