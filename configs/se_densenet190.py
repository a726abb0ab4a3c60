"""Snapshot ensemble (SE): DenseNet-BC-190 (k=40) on CIFAR-100, SD's schedule, no teacher.

Command:

    python -m jaxkd.main --config=configs/se_densenet190.py --workdir=/tmp/se_densenet190

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 8-12 h on one A100-class GPU
(300 epochs of 782 steps at batch 64, 18.5 GFLOPs per image forward, with
rematerialisation); `--config.dtype=bfloat16` roughly halves it.

Paper number: Yang et al., "Snapshot Distillation", Table 3, DenseNet190, SE: error
18.98 / 18.12 / 16.95 / 16.84 at the ends of the 4 cycles, best 16.70, ensemble of the
4 snapshots 15.70 (`snapshot_ensemble` in results.json). SD with T = 2 on the same
schedule (configs/sd_densenet190.py): best 16.06, ensemble 15.72.

Settings ([SD] Sec. 4.1.1, the SE baseline of Huang et al. 2017 with SD's learning-rate
policy): SGD Nesterov 0.9, wd 1e-4, batch 64, 300 epochs in K = 4 cycles of 75 epochs,
each restarting a cosine learning rate at 0.1; plain cross-entropy throughout, each cycle
continuing the weights of the previous one. Pad-4 random crop + flip.

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
    presets.snapshot(c, temperature=2.0, cycles=4, teacher=False)
    return c
