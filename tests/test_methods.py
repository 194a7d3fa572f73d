"""The plug-in point of training methods: docs/adding_a_method.md's worked example (label smoothing), executed
from the page itself, registered with one line and trained through run_classifier's main on real WNLI data
with a tiny model; and the registry's rules (settings by flag, refusals, what a run records)."""
import json
import re
import types

import pytest
from absl import flags as absl_flags

from bert import flags as flag_definitions  # defines the registered methods' flags first
from bert import modeling, run_info
from bert.compression import registry
from bert.compression.methods import MethodContext
from bert.data import processors
from bert.errors import UserError
from conftest import REPO_ROOT, TINY_BERT_CONFIG, run_in_process


def example_module() -> types.ModuleType:
    """The first python block of docs/adding_a_method.md, as the module it says it is."""
    page = (REPO_ROOT / "docs" / "adding_a_method.md").read_text()
    source = re.search(r"```python\n(.*?)```", page, re.S).group(1)
    module = types.ModuleType("bert.compression.label_smoothing")
    exec(compile(source, "docs/adding_a_method.md", "exec"), module.__dict__)
    return module


@pytest.fixture(scope="module")
def label_smoothing():
    """The example registered as the page says (one line in REGISTERED), its flag defined as bert/flags.py would."""
    method = example_module().LabelSmoothing
    registry.REGISTERED.append(method)
    if "label_smoothing" not in absl_flags.FLAGS:
        method.define_flags(absl_flags)
    yield method
    registry.REGISTERED.remove(method)


@pytest.fixture
def flags(tmp_path, glue_dir, vocab_file):
    (tmp_path / "bert_config.json").write_text(json.dumps(dict(TINY_BERT_CONFIG, hidden_dropout_prob=0.0,
                                                               attention_probs_dropout_prob=0.0)))
    return {"--task_name": "WNLI", "--data_dir": str(glue_dir / "WNLI"), "--vocab_file": vocab_file,
            "--bert_config_file": str(tmp_path / "bert_config.json"), "--do_train": "true", "--do_eval": "true",
            "--max_seq_length": "32", "--train_batch_size": "16", "--num_train_epochs": "0.5",
            "--learning_rate": "1e-3", "--eval_batch_size": "64", "--progress_seconds": "0"}


def results(output_dir) -> dict:
    lines = (output_dir / "eval_results.txt").read_text().splitlines()
    return {key: float(value) for key, value in (line.split(" = ") for line in lines)}


def scalar_tags(output_dir) -> set:
    from bert.compat import tf
    tags = set()
    for path in tf.io.gfile.glob(str(output_dir / "events.out.tfevents.*")):
        for event in tf.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_the_documented_example_trains_shows_its_field_and_is_recorded(label_smoothing, flags, tmp_path):
    plain, smoothed = tmp_path / "plain", tmp_path / "smoothed"
    assert run_in_process(dict(flags, **{"--output_dir": str(plain)}))[0] == 0
    assert run_in_process(dict(flags, **{"--output_dir": str(smoothed), "--label_smoothing": "0.2"}))[0] == 0
    recorded = run_info.read(str(smoothed))["settings"]
    assert recorded["label_smoothing"] == 0.2 and "label_smoothing" not in run_info.read(str(plain))["settings"]
    # the same batches and initial weights, another objective: other weights, the same kind of report
    assert results(plain)["global_step"] == results(smoothed)["global_step"] == 19
    assert results(plain)["eval_loss"] != results(smoothed)["eval_loss"]
    assert "smoothed_loss" in scalar_tags(smoothed) and "smoothed_loss" not in scalar_tags(plain)
    # a run dir trained without the method is not resumed with it, nor the other way round
    code, stderr = run_in_process(dict(flags, **{"--output_dir": str(plain), "--label_smoothing": "0.2"}))
    assert code == 1 and "--label_smoothing 0.0 (now 0.2)" in stderr, stderr
    code, stderr = run_in_process(dict(flags, **{"--output_dir": str(smoothed)}))
    assert code == 1 and "--label_smoothing 0.2 (now 0.0)" in stderr, stderr


def test_the_example_refuses_what_it_cannot_do(label_smoothing):
    config = modeling.BertConfig.from_dict(TINY_BERT_CONFIG)
    stsb, mrpc = (MethodContext(processors.get_task(name), config, None) for name in ("STS-B", "MRPC"))
    with pytest.raises(UserError, match="STS-B is a regression"):
        label_smoothing.build(0.1, stsb)
    with pytest.raises(UserError, match=re.escape("--label_smoothing=1 must be in [0, 1)")):
        label_smoothing.build(1.0, mrpc)
    assert label_smoothing.build(0.0, mrpc) is None and label_smoothing.build(0.1, mrpc).epsilon == 0.1


def test_every_registered_method_reads_its_settings_from_the_flag_defaults_and_is_off_there():
    from bert.settings import Settings
    defaults = flag_definitions.defaults()
    settings = Settings.from_values(dict(defaults, task_name="MRPC", data_dir="d", output_dir="o",
                                         bert_config_file="c", vocab_file="v"), registry.read_settings(defaults))
    assert set(settings.methods) == {method.name for method in registry.REGISTERED}
    context = MethodContext(processors.get_task("MRPC"), modeling.BertConfig.from_dict(TINY_BERT_CONFIG), settings)
    assert registry.build(context) == []  # the defaults fine-tune the plain model
