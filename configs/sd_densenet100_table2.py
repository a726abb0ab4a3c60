"""[SD] Table 2, T-S similarity: a DenseNet-BC-100 snapshot M#75 taught by a teacher M^T.

This config is the student row M#75 (taught by M#0^T); the other cells change two flags.
Three steps, each one command (paths as below; ckpt/<step> = epoch * 782 steps at batch 64):

    # 1. the 300-epoch cosine base run M#300, keeping every epoch's checkpoint
    python -m jaxkd.main --config=configs/sd_densenet100.py --workdir=/tmp/sd_table2/base --config.method=baseline --config.keep_checkpoints=300
    # 2. a teacher M#0^T (another seed from scratch; M#75^T: add --config.init.checkpoint=/tmp/sd_table2/base/phases/baseline/ckpt/58650 --config.init.epoch=75)
    python -m jaxkd.main --config=configs/sd_densenet100.py --workdir=/tmp/sd_table2/teacher0 --config.method=baseline --config.seed=1
    # 3. this config: the student continues M#75 for epochs 76..300, taught by M#0^T
    python -m jaxkd.main --config=configs/sd_densenet100_table2.py --workdir=/tmp/sd_densenet100_table2

Data: CIFAR-100 through TFDS (`data.source='tfds'`, `data.name='cifar100'`, prepared by
TFDS on first use). Offline alternative, the original binary archive:
`--config.data.source=cifar_binary --config.data.path=/path/cifar-100-binary.tar.gz`.

Expected wall time (an estimate, not measured): about 3 h per 300-epoch run on one
A100-class GPU (the student: 225 epochs plus the teacher's forward).

Paper number: Yang et al., "Snapshot Distillation", Table 2 (accuracy, %, mean of two
runs): student M#75 taught by M#0^T 78.18, by M#75^T 78.02; M#0 taught by any 78.13;
the teachers' average 77.65.

Settings ([SD] Sec. 3.3.2): the cosine protocol of configs/sd_densenet100.py; the student
starts from the snapshot (`config.init.checkpoint`, params and BatchNorm statistics) at
schedule epoch 75 (`config.init.epoch`) with another seed (new data order and
augmentation) and learns from the teacher checkpoint (`config.teacher.checkpoint`,
method `kd`) with SD's loss (Eqn 3). Row M#150: `--config.init.epoch=150` with the
epoch-150 checkpoint (step 117300). Deviation: the temperature of Table 2 is not given;
T = 3 as configs/sd_densenet100.py.
"""

import ml_collections

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = default_config()
    presets.cifar100_densenet(c, 100, schedule="cosine")
    c.method = "kd"
    c.seed = 2
    c.loss = ml_collections.ConfigDict(dict(name="snapshot_distillation", temperature=3.0))
    c.teacher.model = presets.CIFAR_DENSENETS[100]
    c.teacher.checkpoint = "/tmp/sd_table2/teacher0/phases/baseline"
    c.init.checkpoint = "/tmp/sd_table2/base/phases/baseline/ckpt/58650"
    c.init.epoch = 75
    return c
