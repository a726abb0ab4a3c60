"""Born-again across architectures: a DenseNet-90-60 teacher, a Wide-ResNet student.

Command:

    python -m jaxkd.main --config=configs/ban_densenet_to_resnet.py --workdir=/tmp/ban_densenet_to_resnet

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 3 h for the DenseNet-90-60 teacher
(11.5 GFLOPs per image forward) and 2.5-3 h for the WRN-28-10 student with the teacher's
forward pass, on one A100-class GPU: 5.5-6 h in all.

Paper number: Furlanello et al., "Born-Again Neural Networks", Table 5 (DenseNet 90-60
teacher -> ResNet students): BAN-Wide-ResNet-4-0.5 (24.3M parameters) 17.13% error vs
19.63% for the same network trained on labels, BAN-Wide-ResNet-4-1 (87.3M) 17.18% vs
18.77%; the DenseNet-90-60 teacher has 17.69% (Table 2). WRN-28-10 (36.5M, 4 blocks per
stage, widths 160/320/640) lies between the two paper students; trained on labels alone
it has 19.08% (Table 3). The reverse direction (WRN-28-10 teacher, DenseNet-90-60
student: 16.79%, Table 3) needs a copy of this file with `model='densenet_90_60'`,
`teacher.model='wrn_28_10'` and the dropout moved to `teacher.model_overrides`.

Settings: generation 0 trains `teacher.model` (DenseNet-90-60) with cross-entropy, the
student (`model`, WRN-28-10, dropout 0.3) then learns from its outputs only
(`born_again.variant='ban'`) from a fresh init. Both use [BAN]'s Wide-ResNet protocol:
SGD Nesterov 0.9, wd 5e-4, batch 128, 200 epochs, lr 0.1 multiplied by 0.2 at epochs 60,
120 and 160, pad-4 random crop with reflection padding (`data.augment.pad_mode='reflect'`,
the WRN paper's "reflections of original image") + flip.
Deviations: the paper's students are built to match the DenseNet's block output shapes
(4 residual units per stage with 0.5x or 1x the channels of the dense block outputs) and
share the teacher's first convolution and classifier, frozen. jaxkd has the sharing
(`config.init.subtrees`: copied from a checkpoint) and the freezing
(`config.optimizer.frozen`), tested in tests/test_init.py, but the zoo has no matched
students: the paper does not give their stage widths (basic pre-activation blocks of
480/660/1500 channels would have 722 M parameters against the paper's 17.7 M), so this
student is the closest zoo network (WRN-28-10) trained entirely from scratch; the shape
check refuses to share WRN-28-10's 16-channel first convolution with the DenseNet's.
Shared and frozen, for a student whose `Conv_0` and `head` match the teacher's: method
`kd` with `config.teacher.checkpoint` = `config.init.checkpoint` = the gen0 phase dir,
and `config.init.subtrees` = `config.optimizer.frozen` = `('Conv_0', 'head')`.

LSR baseline (no LSR row in [BAN]; independent reproductions find label smoothing
often matches born-again gains): `--config.method=baseline --config.loss.label_smoothing=0.1`
trains `model` once on labels smoothed with eps = 0.1 (Szegedy et al. 2016), same
protocol.
"""

import ml_collections

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = default_config()
    presets.wide_resnet_protocol(c)
    c.method = "born_again"
    c.teacher.model = "densenet_90_60"
    c.model = "wrn_28_10"
    c.model_overrides = ml_collections.ConfigDict(dict(dropout_rate=0.3))
    c.born_again.variant = "ban"
    c.generations = 1
    return c
