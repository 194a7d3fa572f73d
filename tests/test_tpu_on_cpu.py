"""TPU paths that a CPU can run: the fixed-size batches of TPU evaluation and prediction, whose last batch is
filled with padding examples that `is_real_example` marks and run_predictions drops. Real RTE dev data and a
tiny model (randomly initialised: the outputs are compared with themselves, not judged)."""
import json
import subprocess
import sys

from conftest import REPO_ROOT, TINY_BERT_CONFIG

PADDED_PREDICTIONS = r'''
import sys
import numpy as np
from bert import files, modeling, run_classifier as rc, tokenization
from bert.data import processors
from bert.data.features import FeatureCache
glue, vocab, config_file, out = sys.argv[1:5]
files.makedirs(out)
rc.FLAGS(["run_classifier", "--task_name=RTE", "--data_dir=%s/RTE" % glue, "--vocab_file=" + vocab,
          "--bert_config_file=" + config_file, "--output_dir=" + out, "--max_seq_length=32", "--do_eval=true"])
task = processors.get_task("RTE")
config = modeling.BertConfig.from_json_file(config_file)
estimator = rc.build_estimator(rc.model_fn_builder(config, task, None, 1e-5, 0, 0, use_tpu=False), False, 64)
cache = FeatureCache(out, tokenization.FullTokenizer(vocab), vocab, True, 32)
examples = rc.read_split(task, rc.FLAGS.data_dir, "dev")
plain, padded = (rc.run_predictions(estimator, cache, task, rc.FLAGS.data_dir, "dev", examples, 64, full_batches=full)
                 for full in (False, True))
assert len(examples) == 277 and len(cache.tfrecord(task, rc.FLAGS.data_dir, "dev", examples, 43).lengths) == 320
assert plain.outputs.shape == padded.outputs.shape == (277, 2), (plain.outputs.shape, padded.outputs.shape)
assert np.abs(plain.outputs - padded.outputs).max() < 1e-5
assert np.abs(plain.per_example_loss - padded.per_example_loss).max() < 1e-5
print("ok")
'''


def test_padded_fixed_size_batches_give_the_outputs_of_the_real_examples(tmp_path, glue_dir, vocab_file):
    (tmp_path / "bert_config.json").write_text(json.dumps(TINY_BERT_CONFIG))
    done = subprocess.run([sys.executable, "-c", PADDED_PREDICTIONS, str(glue_dir), vocab_file,
                           str(tmp_path / "bert_config.json"), str(tmp_path / "out")], cwd=str(REPO_ROOT),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout[-3000:]
