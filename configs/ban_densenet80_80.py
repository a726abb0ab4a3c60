"""Born-again networks: DenseNet-80-80 on CIFAR-100, a teacher and 3 BAN generations.

Command:

    python -m jaxkd.main --config=configs/ban_densenet80_80.py --workdir=/tmp/ban_densenet80_80

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 4 h for the teacher and 5 h per BAN
generation on one A100-class GPU (16.3 GFLOPs per image forward, 200 epochs), roughly
20 h in all; `--config.dtype=bfloat16` roughly halves it.

Paper number: Furlanello et al., "Born-Again Neural Networks", Table 2, DenseNet-80-80:
teacher 17.16% error, BAN-1 16.26, BAN-2 16.30, BAN-3 15.5 ("our single best model",
22M parameters); ensembles of BAN generations Ens*2 15.46, Ens*3 15.14 (`bane` in
results.json averages generations 1..3, as Ens*3). The single BAN student of the left
side of Table 2 (16.36) is `--config.generations=1`.

Settings: BAN students learn from the teacher's outputs only (cross-entropy to the
teacher's softmax, `born_again.variant='ban'`), each from a fresh init, "using the same
training schedule originally used to train the teacher". [BAN] Sec. 4: "the same
preprocessing and training setting as for Wide-ResNet" (Zagoruyko & Komodakis 2016):
SGD Nesterov 0.9, wd 5e-4, batch 128, 200 epochs, lr 0.1 multiplied by 0.2 at epochs 60,
120 and 160; pad-4 random crop with the missing pixels filled with reflections of the
image (WRN Sec. 3: `data.augment.pad_mode='reflect'`) + flip. The paper adds "except for Mean-Std normalization"; jaxkd always normalises
with the training set's per-channel mean and std.

LSR baseline (no LSR row in [BAN]; independent reproductions find label smoothing
often matches born-again gains): `--config.method=baseline --config.loss.label_smoothing=0.1`
trains `model` once on labels smoothed with eps = 0.1 (Szegedy et al. 2016), same
protocol.
"""

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = default_config()
    presets.wide_resnet_protocol(c)
    c.method = "born_again"
    c.model = "densenet_80_80"
    c.born_again.variant = "ban"
    c.generations = 3
    return c
