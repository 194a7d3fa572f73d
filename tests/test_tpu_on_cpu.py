"""TPU paths that a CPU can run: the fixed-size batches of TPU evaluation and prediction, whose last batch is
filled with padding examples that `is_real_example` marks and run_predictions drops. Real RTE dev data and a
tiny model (randomly initialised: the outputs are compared with themselves, not judged)."""
import dataclasses
import json

import numpy as np

from bert import modeling, tokenization
from bert.compat import tf
from bert.data import processors
from bert.data.features import FeatureCache
from bert.settings import Settings
from bert.training.estimator import build_estimator, model_fn_builder
from bert.training.evaluation import read_split, run_predictions
from conftest import TINY_BERT_CONFIG


def test_padded_fixed_size_batches_give_the_outputs_of_the_real_examples(tmp_path, glue_dir, vocab_file):
    (tmp_path / "bert_config.json").write_text(json.dumps(TINY_BERT_CONFIG))
    out = str(tmp_path / "out")
    tf.io.gfile.makedirs(out)
    cpu = Settings.from_values(dict(task_name="RTE", data_dir=str(glue_dir / "RTE"), vocab_file=vocab_file,
                                    bert_config_file=str(tmp_path / "bert_config.json"), output_dir=out,
                                    max_seq_length=32, do_eval=True))
    tpu = cpu.replace(hardware=dataclasses.replace(cpu.hardware, use_tpu=True))  # fixed shapes, padded last batch
    task = processors.get_task("RTE")
    config = modeling.BertConfig.from_dict(TINY_BERT_CONFIG)
    cache = FeatureCache(out, tokenization.FullTokenizer(vocab_file), vocab_file, True, 32)
    examples = read_split(task, cpu.run.data_dir, "dev", cpu)
    # use_tpu=False in the model_fn and the Estimator: TPUEstimator on the CPU, fed as a TPU would be
    estimator = build_estimator(model_fn_builder(config, task, None, 1e-5, 0, 0, use_tpu=False), cpu, 64)
    plain, padded = (run_predictions(estimator, cache, task, cpu.run.data_dir, "dev", examples, 64, settings)
                     for settings in (cpu, tpu))
    assert len(examples) == 277 and len(cache.tfrecord(task, cpu.run.data_dir, "dev", examples, 43).lengths) == 320
    assert plain.outputs.shape == padded.outputs.shape == (277, 2), (plain.outputs.shape, padded.outputs.shape)
    assert np.abs(plain.outputs - padded.outputs).max() < 1e-5
    assert np.abs(plain.per_example_loss - padded.per_example_loss).max() < 1e-5
