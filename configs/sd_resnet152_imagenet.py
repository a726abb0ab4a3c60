"""Snapshot distillation on ILSVRC2012: ResNet-152, K = 2 mini-generations of 45 epochs, T = 2.

Command:

    python -m jaxkd.main --config=configs/sd_resnet152_imagenet.py --workdir=/tmp/sd_resnet152_imagenet

Data: ILSVRC2012 through TFDS (`data.source='tfds'`, `data.name='imagenet2012'`), streamed
and decoded on the host; TFDS cannot download it: put ILSVRC2012_img_train.tar and
ILSVRC2012_img_val.tar into <data_dir>/downloads/manual and let TFDS prepare it
(`--config.data.data_dir=...` if not ~/tensorflow_datasets). Accuracy is reported on
the 50 000 validation images (single 224 x 224 centre crop).

Expected wall time (an estimate, not measured): about 40-50 h on one A100-class GPU in
float32 (22.9 GFLOPs per 224 x 224 forward, 90 epochs of ~5000 steps; the second half adds
the teacher's forward), roughly half with `--config.dtype=bfloat16`; host decoding of the
JPEGs must keep up with ~1000 images/s. Batch 256 in float32 needs ~45 GB of GPU memory.

Paper number: Yang et al., "Snapshot Distillation", Table 4, ResNet152: SD top-1/top-5
error 22.56/6.44 after the first mini-generation and 20.93/5.55 at the end, vs BL (one
90-epoch cosine run) 21.17/5.66 and SE 21.84/5.84 (21.19 fused).

Settings ([SD] Sec. 4.2.1): SGD Nesterov 0.9, wd 1e-4, batch 256, 90 epochs as K = 2
mini-generations of 45, each a cosine learning rate from 0.1; the second learns from the
snapshot at epoch 45 with (1 + 1/T) * CE + KL(softmax(t/T) || softmax(z)), T = 2.
Deviation: the paper's augmentation (rescale + crop, mirror, slight rotation, aspect-ratio
change, pixel jittering) is approximated by jaxkd's 'imagenet' augmentation (random-
resized crop to 224 + horizontal flip); no rotation or colour jitter is available.

LSR baseline (no LSR row in the paper; independent reproductions find label smoothing
often matches self-distillation): `--config.method=baseline --config.loss.label_smoothing=0.1`
trains the BL row once (one cosine run over all epochs, no restarts, no teacher) on
labels smoothed with eps = 0.1 (Szegedy et al. 2016).
"""

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = default_config()
    presets.imagenet(c)
    presets.cross_entropy(c)             # declares loss.label_smoothing
    c.model = "resnet152"
    c.batch_size = 256
    c.num_epochs = 90
    presets.sgd(c, weight_decay=1e-4)
    presets.snapshot(c, temperature=2.0, cycles=2)
    return c
