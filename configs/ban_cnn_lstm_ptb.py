"""Born-again CNN-LSTM language model on Penn Treebank: [BAN] Table 6, the ConvLSTM row.

Command (PTB's three text files in one folder, Mikolov's layout):

    python -m jaxkd.main --config=configs/ban_cnn_lstm_ptb.py --workdir=/tmp/ban_cnn_lstm_ptb \
        --config.data.path=/path/to/ptb   # ptb.train.txt, ptb.valid.txt, ptb.test.txt

On the generated text bundled in the package (no download; a small model, which needs a
wider init than Kim et al.'s to leave the unigram plateau within a few epochs; the same
settings as tests/test_lstm_lm.py's CNN-LSTM run):

    python -m jaxkd.main --config=configs/ban_cnn_lstm_ptb.py --workdir=/tmp/ban_cnn_sample \
        --config.data.source=text_sample --config.data.bptt=20 --config.batch_size=16 \
        --config.model_overrides.char_dim=8 --config.model_overrides.filter_widths=1,2,3 \
        --config.model_overrides.filters_per_width=8 --config.model_overrides.highway_layers=1 \
        --config.model_overrides.hidden_dim=32 --config.model_overrides.dropout=0.1 \
        --config.model_overrides.init_scale=0.2 --config.schedule.base_lr=20 \
        --config.num_epochs=2

Expected wall time (an estimate, not measured): an epoch of PTB's 929k training tokens is
about 1 330 steps of 20 x 35 tokens; 19M parameters, most of the FLOPs in the highway
layers and the 650-unit LSTMs; on one A100/H100-class GPU a few minutes per epoch, so
roughly 2-4 h for the two generations of 40 epochs.

Paper numbers ([BAN] Table 6, perplexity, lower is better; val / test): teacher
ConvLSTM 83.69 / 80.05, BAN+L student 80.27 / 76.97 (19M parameters). [BAN] section 5.3:
the LSTMs improve only with the label term (BAN+L), not with the teacher alone.

Settings ([BAN] section 4.2; the model is Kim et al. 2016's LSTM-Char-Large,
`cnn_lstm_lm`): characters in 15 dims, convolutions of widths 1-7 with min(200, 50 w)
filters, 2 highway layers, 2 LSTM layers of 650 units, dropout 0.5, untied softmax,
U(-0.05, 0.05) init; truncated BPTT over 35 words with the state carried across windows;
plain SGD, batch 20, 40 epochs, initial rate 2 multiplied by 0.5 when the validation
perplexity does not decrease by at least 0.5 after an epoch (`schedule.name = 'plateau'`,
jaxkd.plateau), gradient norm clipped at 5 (Kim et al.). The loss of [BAN]/Kim et al.
sums over a window's 35 words (averaged over the batch); jaxkd's is the mean over tokens,
so the same steps are lr 2 x 35 and a clipping norm of 5 / 35 here. Perplexity: results.json
`last_perplexity` (test) and `last_heldout_perplexity` (validation) per phase.
"""

from jaxkd import presets
from jaxkd.config import default_config


def get_config():
    c = presets.ban_ptb_language_model(
        default_config(), model="cnn_lstm_lm", batch_size=20,
        lr_per_window=2.0, clip_per_window=5.0,        # [BAN] lr 2; Kim et al.'s norm 5
        factor=0.5, threshold=0.5)                      # x0.5 unless ppl drops >= 0.5
    c.model_overrides.char_dim = 15
    c.model_overrides.filter_widths = (1, 2, 3, 4, 5, 6, 7)
    c.model_overrides.filters_per_width = 50
    c.model_overrides.max_filters = 200
    c.model_overrides.highway_layers = 2
    c.model_overrides.hidden_dim = 650
    c.model_overrides.num_layers = 2
    c.model_overrides.dropout = 0.5
    c.model_overrides.init_scale = 0.05                # U(-0.05, 0.05), Kim et al.
    return c
