"""Born-again LSTM language model on Penn Treebank: [BAN] Table 6, the LSTM row (BAN+L).

Command (PTB's three text files in one folder, Mikolov's layout):

    python -m jaxkd.main --config=configs/ban_lstm_ptb.py --workdir=/tmp/ban_lstm_ptb \
        --config.data.path=/path/to/ptb   # ptb.train.txt, ptb.valid.txt, ptb.test.txt

On the generated text bundled in the package (no download; a small model, about a
minute on a CPU):

    python -m jaxkd.main --config=configs/ban_lstm_ptb.py --workdir=/tmp/ban_lstm_sample \
        --config.data.source=text_sample --config.model_overrides.embed_dim=64 \
        --config.model_overrides.hidden_dim=64 --config.model_overrides.dropout=0.2 \
        --config.batch_size=16 --config.num_epochs=6

Expected wall time (an estimate, not measured): an epoch of PTB's 929k training tokens is
about 830 steps of 32 x 35 tokens; on one A100/H100-class GPU a few minutes per epoch for
the 1500-unit LSTM, so roughly 2-4 h for the two generations of 40 epochs.

Paper numbers ([BAN] Table 6, perplexity, lower is better; val / test):
teacher LSTM 75.11 / 71.87, BAN+L student 71.19 / 68.56 (52M parameters); the smaller
CNN-LSTM 83.69 / 80.05 -> 80.27 / 76.97 (not in the zoo). [BAN] section 5.3: the LSTMs
improve only with the label term (BAN+L), not with the teacher alone.

Settings ([BAN] section 4.2, Zaremba et al. 2014 "large"): one LSTM layer of 1500 units,
tied input/output embeddings, dropout 0.65 on non-recurrent connections, uniform init in
[-0.05, 0.05], truncated BPTT over 35 tokens with the state carried across windows, batch
32, plain SGD from lr 1, 40 epochs, gradient norm clipped at 10 (Zaremba's large model).
Zaremba's loss sums over a window's 35 tokens (averaged over the batch); jaxkd's is the
mean over tokens, so the same steps are lr 35 and a clipping norm of 10 / 35 here.
Perplexity = exp(test loss per token): results.json `last_perplexity` / `best_perplexity`
per phase, exp of each evaluation's `loss` in metrics.jsonl.

Learning rate: [BAN]'s adaptive schedule, `schedule.name = 'plateau'` (jaxkd.plateau):
after every epoch the validation split (ptb.valid.txt) is evaluated and the rate is
multiplied by 0.25 when its perplexity is not below the best so far; results.json gives
each phase's `last_heldout_perplexity` / `best_heldout_perplexity` (Table 6's "Val") beside
the test perplexity. The student carries its state across windows; the teacher does not:
for each window it reads the 35 tokens before it from a zero state, then gives its soft
targets for the window.
"""

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = presets.ban_ptb_language_model(
        default_config(), model="lstm_lm", batch_size=32,
        lr_per_window=1.0, clip_per_window=10.0,       # Zaremba et al.'s large model
        factor=0.25, threshold=0.0)                     # x0.25 on any non-decrease
    c.model_overrides.embed_dim = 1500
    c.model_overrides.hidden_dim = 1500
    c.model_overrides.num_layers = 1
    c.model_overrides.dropout = 0.65
    c.model_overrides.tie_weights = True
    return c
