"""Born-again DenseNets of another shape: a DenseNet-90-60 teacher, a 2 x deeper student.

Command:

    python -m jaxkd.main --config=configs/ban_densenet_table4.py --workdir=/tmp/ban_densenet_table4

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 3 h for the DenseNet-90-60 teacher
(11.5 GFLOPs per image forward, 200 epochs) and 3-4 h for a student with the teacher's
forward pass, on one A100-class GPU: 6-7 h per row. Every row retrains the same teacher
(same seed, same phase: identical up to the device count's rounding).

Paper number: Furlanello et al., "Born-Again Neural Networks", Table 4 (CIFAR-100 test
error of BAN students of a DenseNet-90-60 teacher that "share the same size of hidden
states after each spatial transition but differ in depth and compression rate"). Teacher
17.69% (Table 4 lists 22.4M parameters, Table 1 16.1M; ours 15.2M). This file runs the
2*Depth row, the paper's best modified student: 16.43% error (13.7M; ours 12.7M). The
rows, each one command-line override of the student (`model_overrides`; the teacher,
`teacher.model_overrides`, stays the named 90-60):

    0.5*Depth (DenseNet-7-1-2): 16.95%, 21.2M (ours 20.3M)
        `--config.model_overrides.layers_per_block=7 --config.model_overrides.growth_rate=120`
    2*Depth (this file's defaults): 16.43%, 13.7M (ours 12.7M)
        `--config.model_overrides.layers_per_block=28 --config.model_overrides.growth_rate=30`
    3*Depth: 16.64%, 12.9M (ours 11.9M)
        `--config.model_overrides.layers_per_block=42 --config.model_overrides.growth_rate=20`
    4*Depth: 16.64%, 12.6M (ours 11.6M)
        `--config.model_overrides.layers_per_block=56 --config.model_overrides.growth_rate=15`
    0.5*Compr (DenseNet-14-0.5-1): 19.83%, 5.1M (ours 12.2M)
        `--config.model_overrides.layers_per_block=14 --config.model_overrides.growth_rate=60 --config.model_overrides.compression=0.25`
    0.75*Compr: 17.3%, 10.1M (ours 13.6M)
        `--config.model_overrides.layers_per_block=14 --config.model_overrides.growth_rate=60 --config.model_overrides.compression=0.375`
    1.5*Compr: 18.89%, 80.5M (ours 19.0M)
        `--config.model_overrides.layers_per_block=14 --config.model_overrides.growth_rate=60 --config.model_overrides.compression=0.75`

Settings: the depth rows keep the teacher's 14 x 60 = 840 channels added per dense block
(layers_per_block x growth_rate) and its 120-channel stem (`stem_features=120`; Huang et
al.'s default would be 2 x growth), so every block's output and every transition's has the
teacher's width, as [BAN] Sec. 3.3 builds them ("we modulate the growth factor indirectly
by choosing the number of blocks"); names "DenseNet-d-c-g" read layers per block,
compression and growth relative to the teacher. The compression rows scale the teacher's
transition factor (DenseNet-BC's 0.5): "0.5*Compr" halves "the number of filters after each
spatial reduction" (compression 0.25). Deviation: the paper's parameter counts of these
three rows (5.1M, 10.1M, 80.5M) match no variant of the zoo's DenseNet-BC we tried (also
scaling the bottleneck width), so their architecture is our reading. Training: generation
0 trains the teacher with cross-entropy, the student learns from its outputs only
(`born_again.variant='ban'`, fresh init), both with [BAN]'s Wide-ResNet protocol: SGD
Nesterov 0.9, wd 5e-4, batch 128, 200 epochs, lr 0.1 multiplied by 0.2 at epochs 60, 120
and 160, pad-4 random crop with reflection padding (`data.augment.pad_mode='reflect'`) +
flip.

LSR baseline (no LSR row in [BAN]): `--config.method=baseline --config.loss.label_smoothing=0.1`
trains the student network once on labels smoothed with eps = 0.1 (Szegedy et al. 2016).
"""

import ml_collections

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = default_config()
    presets.wide_resnet_protocol(c)
    c.method = "born_again"
    c.teacher.model = "densenet_90_60"
    c.model = "densenet_90_60"
    c.model_overrides = ml_collections.ConfigDict(dict(
        layers_per_block=28, growth_rate=30, stem_features=120, compression=0.5))
    c.born_again.variant = "ban"
    c.generations = 1
    return c
