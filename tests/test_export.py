"""bert/serving/export.py: a fine-tuned run's SavedModel, loaded and run by plain TensorFlow without this code.

The exports of a pruned embedded-model MRPC run and of a dense tiny STS-B run (conftest's fixtures) are
loaded in a subprocess that has no repository on its path, refuses to import this project's package (installed
editable, `bert` is importable everywhere in the environment), runs from elsewhere and never loads the fused
kernels' library: with TF 2's tf.saved_model.load or TF 1's tf.saved_model.loader.load, by whichever stack is
running the tests, and by the other one too when its environment is there (a model exported on TF 1.15 served
by a TF 2 server). Their outputs must equal the run's own test_results.tsv for the same examples.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bert import tokenization
from bert.data import features, processors
from bert import run_info
from bert.serving import export
from bert.compat import IS_TF2
from bert.errors import UserError
from conftest import REPO_ROOT

# Runs in the subprocess. argv: a JSON file of jobs [{"model", "inputs", "outputs"}] and the repository's folder;
# prints what it found.
LOADER = r'''
import importlib.abc, json, os, sys


class NoProjectCode(importlib.abc.MetaPathFinder):
    """Refuses this project's package before any other finder looks (installed editable, it would be found), and
    records each try."""
    tried = []

    def find_spec(self, name, path=None, target=None):
        if name == "bert" or name.startswith("bert."):
            self.tried.append(name)
            raise ModuleNotFoundError("the export must load without this project's code (%s)" % name)
        return None


sys.meta_path.insert(0, NoProjectCode())
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

registered = getattr(op_def_registry, "get", None) or op_def_registry.get_registered_ops().get
found = {"tensorflow": tf.__version__, "sys_path": sys.path, "models": []}
for job in json.load(open(sys.argv[1])):
    saved_model = saved_model_pb2.SavedModel.FromString(open(job["model"] + "/saved_model.pb", "rb").read())
    graph = saved_model.meta_graphs[0].graph_def
    op_types = {node.op for node in graph.node} | {node.op for f in graph.library.function for node in f.node_def}
    inputs = dict(np.load(job["inputs"]))
    batches = sorted({name.split("/")[0] for name in inputs})
    outputs, error = {}, None
    if tf.__version__.startswith("2."):
        signature = tf.saved_model.load(job["model"]).signatures["serving_default"]
        def run(batch):
            return {name: value.numpy() for name, value in signature(**{
                name: tf.constant(inputs[batch + "/" + name]) for name in ("input_ids", "input_mask", "segment_ids")
            }).items()}
    else:
        session = tf.Session(graph=tf.Graph())
        signature = tf.saved_model.loader.load(session, ["serve"], job["model"]).signature_def["serving_default"]
        def run(batch):
            return session.run({name: t.name for name, t in signature.outputs.items()},
                               {t.name: inputs[batch + "/" + name] for name, t in signature.inputs.items()})
    for batch in batches:
        try:
            for name, value in run(batch).items():
                outputs[batch + "/" + name] = value
        except tf.errors.InvalidArgumentError as e:
            error = str(e)
    np.savez(job["outputs"], **outputs)
    found["models"].append({"unregistered_ops": sorted(op for op in op_types if registered(op) is None),
                            "op_types": sorted(op_types), "error": error})
found["kernels_loaded"] = any("kernels-" in line for line in open("/proc/self/maps"))
found["project_imports"] = list(NoProjectCode.tried)  # what tried to import bert while loading and running
package = os.path.join(os.path.realpath(sys.argv[2]), "bert", "")  # the checkout's own, not its .venv
found["project_modules"] = sorted(name for name, module in list(sys.modules.items())
                                  if os.path.realpath(getattr(module, "__file__", None) or "/").startswith(package))
try:
    import bert  # noqa: F401
    found["bert_importable"] = True
except ImportError:
    found["bert_importable"] = False
print(json.dumps(found))
'''


def other_stack_python():
    """The other TensorFlow stack's interpreter, when its environment exists."""
    python = REPO_ROOT / (".venv" if IS_TF2 else ".venv-tf2") / "bin" / "python"
    return [str(python)] if python.exists() else []


def model_inputs(run_dir, task_dir: str, max_seq_length: int):
    """The run's test examples (the fixtures' test.tsv) as features.py makes them, [n, max_seq_length] each."""
    run = run_info.read_run(str(run_dir))
    tokenizer = tokenization.FullTokenizer(run.vocab_file, run.do_lower_case)
    examples = processors.read_examples(run.task, str(run_dir.parent / task_dir), "test")
    converted = [features.convert_example(example, run.task, max_seq_length, tokenizer) for example in examples]
    return {name: np.array([getattr(f, name) for f in converted], np.int32) for name in run_info.INPUTS}


def batches(inputs, sizes):
    """Consecutive batches of the examples, each cut to its longest example (TF Serving clients pad so), and
    last one too long for the export (one token beyond its max_seq_length)."""
    lengths = inputs["input_mask"].sum(axis=1)
    out, start = {}, 0
    for i, size in enumerate(sizes):
        rows = slice(start, start + size)
        for name, array in inputs.items():
            out["b%d/%s" % (i, name)] = array[rows, :lengths[rows].max()]
        start += size
    for name, array in inputs.items():
        out["too_long/" + name] = np.pad(array[:2], [(0, 0), (0, 1)])
    return out


def client_inputs(saved_model: str, test_file) -> dict:
    """What a TF Serving client that knows nothing of this code feeds the export: the MRPC test pairs tokenized by
    Hugging Face's `tokenizers`, set up as BERT from the export's assets alone (vocab.txt, model_info.json's casing
    and length), a pair too long cut by Google's rule (tokenizers' own truncation differs on ties from 0.14 on),
    in batches of 25 padded to their longest pair."""
    tokenizers = pytest.importorskip("tokenizers")
    with open(os.path.join(saved_model, "assets.extra", "model_info.json")) as f:
        info = json.load(f)
    vocab = os.path.join(saved_model, "assets.extra", info["vocab"])
    client = tokenizers.Tokenizer(tokenizers.models.WordPiece.from_file(vocab, unk_token="[UNK]",
                                                                        max_input_chars_per_word=200))
    client.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=info["do_lower_case"], strip_accents=None)
    client.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    with open(str(test_file), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f.read().splitlines()[1:]]
    cls, sep = client.token_to_id("[CLS]"), client.token_to_id("[SEP]")
    pairs = []
    for row in rows:  # MRPC test: index, id1, id2, s1, s2
        a, b = (client.encode(text, add_special_tokens=False).ids for text in (row[3], row[4]))
        while len(a) + len(b) > info["max_seq_length"] - 3:  # Google's rule (README): from the longer, b on ties
            (a if len(a) > len(b) else b).pop()
        pairs.append(([cls] + a + [sep] + b + [sep], [0] * (len(a) + 2) + [1] * (len(b) + 1)))
    inputs = {}
    for number, start in enumerate(range(0, len(pairs), 25)):
        batch = pairs[start:start + 25]
        length = max(len(ids) for ids, _ in batch)
        pad = [[0] * (length - len(ids)) for ids, _ in batch]
        inputs["b%d/input_ids" % number] = np.array([ids + p for (ids, _), p in zip(batch, pad)], np.int32)
        inputs["b%d/input_mask" % number] = np.array([[1] * len(ids) + p for (ids, _), p in zip(batch, pad)], np.int32)
        inputs["b%d/segment_ids" % number] = np.array([types + p for (_, types), p in zip(batch, pad)], np.int32)
    return inputs


@pytest.fixture(scope="module")
def exported(tmp_path_factory, fine_tuned_mrpc, fine_tuned_stsb):
    """Both runs exported, their inputs, and what each available stack's plain TensorFlow made of them."""
    root = tmp_path_factory.mktemp("export")
    jobs, expected = [], []
    for run_dir, task_dir, sizes in ((fine_tuned_mrpc, "MRPC", (1, 37, 62)), (fine_tuned_stsb, "STS-B", (50,))):
        saved_model = export.export(str(run_dir), str(root / task_dir))
        inputs = model_inputs(run_dir, task_dir, 64)
        np.savez(str(root / (task_dir + "_inputs.npz")), **batches(inputs, sizes))
        jobs.append({"model": saved_model, "inputs": str(root / (task_dir + "_inputs.npz"))})
        expected.append(np.loadtxt(str(run_dir / "test_results.tsv"), ndmin=2 if task_dir == "MRPC" else 1))
    client = client_inputs(jobs[0]["model"], fine_tuned_mrpc.parent / "MRPC" / "test.tsv")
    np.savez(str(root / "client_inputs.npz"), **client)
    jobs.append({"model": jobs[0]["model"], "inputs": str(root / "client_inputs.npz")})
    results = []
    for stack, python in enumerate([sys.executable] + other_stack_python()):
        stack_jobs = [dict(job, outputs=str(root / ("outputs_%d_%d.npz" % (stack, i)))) for i, job in enumerate(jobs)]
        (root / ("jobs_%d.json" % stack)).write_text(json.dumps(stack_jobs))
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        done = subprocess.run([python, "-I", "-c", LOADER, str(root / ("jobs_%d.json" % stack)), str(REPO_ROOT)],
                              cwd=str(root),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        found = json.loads(done.stdout.strip().splitlines()[-1])
        results.append((found, [dict(np.load(job["outputs"])) for job in stack_jobs]))
    return {"jobs": jobs, "expected": expected, "loaded": results}


def test_the_export_is_in_tf_servings_layout_with_what_a_client_needs_to_tokenize(exported, bert_dir):
    mrpc, stsb = (job["model"] for job in exported["jobs"][:2])  # the third job is the client's, on mrpc
    for saved_model in (mrpc, stsb):
        assert os.path.basename(saved_model).isdigit()
        assert sorted(os.listdir(os.path.dirname(saved_model))) == [os.path.basename(saved_model)]  # no <version>.tmp-<pid>
        assert sorted(os.listdir(saved_model)) == ["assets.extra", "saved_model.pb", "variables"]
        assert sorted(os.listdir(os.path.join(saved_model, "assets.extra"))) == ["model_info.json", "vocab.txt"]
    with open(os.path.join(mrpc, "assets.extra", "vocab.txt"), "rb") as f:
        assert f.read() == (bert_dir / "vocab.txt").read_bytes()
    with open(os.path.join(mrpc, "assets.extra", "model_info.json")) as f:
        info = json.load(f)
    assert info == {"task": "MRPC", "labels": ["0", "1"], "do_lower_case": True, "max_seq_length": 64,
                    "inputs": ["input_ids", "input_mask", "segment_ids"], "output": "probabilities",
                    "vocab": "vocab.txt", "checkpoint": "model.ckpt-4"}
    with open(os.path.join(stsb, "assets.extra", "model_info.json")) as f:
        info = json.load(f)
    assert info["labels"] == [] and info["output"] == "predictions"


def test_plain_tensorflow_without_this_code_runs_it_to_the_runs_own_predictions(exported):
    assert len(exported["loaded"]) == 1 + len(other_stack_python())
    for found, outputs in exported["loaded"]:
        assert not found["bert_importable"], found["sys_path"]  # the refusal holds
        assert found["project_imports"] == [] and found["project_modules"] == [], found
        assert not found["kernels_loaded"]
        mrpc, stsb, client = outputs
        probabilities = np.concatenate([mrpc["b%d/probabilities" % i] for i in range(3)])
        np.testing.assert_allclose(probabilities, exported["expected"][0], atol=1e-4, err_msg=found["tensorflow"])
        assert probabilities.std(axis=0).min() > 1e-2  # the examples' outputs differ: equal ones would say little
        np.testing.assert_allclose(stsb["b0/predictions"], exported["expected"][1], atol=1e-4,
                                   err_msg=found["tensorflow"])
        assert stsb["b0/predictions"].shape == (50,)


def test_ids_made_by_hugging_faces_tokenizers_give_the_runs_own_predictions(exported):
    """Issue 17's bar: a client tokenizing with `tokenizers` from the export's assets gets test_results.tsv."""
    for found, (_, _, client) in exported["loaded"]:
        probabilities = np.concatenate([client["b%d/probabilities" % i] for i in range(4)])
        np.testing.assert_allclose(probabilities, exported["expected"][0], atol=1e-4, err_msg=found["tensorflow"])


def test_the_graph_has_stock_ops_only_and_refuses_inputs_beyond_its_length(exported):
    for found, _ in exported["loaded"]:
        for model in found["models"]:
            assert model["unregistered_ops"] == []
            assert not [op for op in model["op_types"] if op.startswith("Bert") or "TPU" in op]
        for model in found["models"][:2]:  # the jobs with a batch one token too long (not the client's)
            assert "inputs longer than the export takes: max_seq_length=64 tokens" in model["error"]


def test_max_seq_length_can_be_lower_but_not_beyond_the_position_embeddings(tmp_path, fine_tuned_stsb):
    saved_model = export.export(str(fine_tuned_stsb), str(tmp_path), max_seq_length=32)
    with open(os.path.join(saved_model, "assets.extra", "model_info.json")) as f:
        assert json.load(f)["max_seq_length"] == 32
    with pytest.raises(UserError, match="--max_seq_length=65: the model takes 3 to 64 tokens"):
        export.export(str(fine_tuned_stsb), str(tmp_path), max_seq_length=65)
    assert len(os.listdir(str(tmp_path))) == 1


def test_a_dir_without_a_run_or_a_checkpoint_is_refused_in_one_line(tmp_path, fine_tuned_stsb):
    with pytest.raises(UserError, match="no run_info.json: it is not the --output_dir of a run_classifier.py run"):
        export.export(str(tmp_path), str(tmp_path / "export"))
    (tmp_path / "run_info.json").write_text((fine_tuned_stsb / "run_info.json").read_text())
    with pytest.raises(UserError, match="has no checkpoint: train the run first"):
        export.export(str(tmp_path), str(tmp_path / "export"))
    done = subprocess.run([sys.executable, "-m", "bert.serving.export", "--output_dir=%s" % (tmp_path / "missing"),
                           "--export_dir=%s" % (tmp_path / "export")], cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == ("error: %s is not a directory: pass the --output_dir of a "
                                                    "fine-tuning run" % (tmp_path / "missing"))
    assert not (tmp_path / "export").exists()
