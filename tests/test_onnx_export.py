"""bert/serving/onnx_export.py, predict's and evaluate's ONNX Runtime path: the export computes the run's outputs.

conftest's pruned embedded-model MRPC run is exported in float and with int8 weights, its tiny dense STS-B run in
float; ONNX Runtime runs them from their folders alone (a subprocess that cannot import this project) and through
bert.serving.predict and bert.serving.evaluate.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bert.errors import UserError
from bert.serving import evaluate, export, onnx_export, predict
from test_export import model_inputs

# Runs in a subprocess with no project code (argv: model.onnx, inputs .npz, outputs .npz); prints its inputs.
CLIENT = r'''
import importlib.abc, json, sys


class NoProjectCode(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "bert" or name.startswith("bert."):
            raise ModuleNotFoundError("the ONNX export must run without this project's code (%s)" % name)


sys.meta_path.insert(0, NoProjectCode())
import numpy as np
import onnxruntime

session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
inputs = dict(np.load(sys.argv[2]))
np.savez(sys.argv[3], *session.run(None, inputs))
print(json.dumps({"inputs": [(i.name, i.type, i.shape) for i in session.get_inputs()],
                  "outputs": [(o.name, o.type, o.shape) for o in session.get_outputs()]}))
'''


@pytest.fixture(scope="module")
def exports(tmp_path_factory, fine_tuned_mrpc, fine_tuned_stsb):
    root = tmp_path_factory.mktemp("onnx")
    return {name: onnx_export.export_onnx(str(run), str(root / name), quantize=quantize)
            for name, run, quantize in (("mrpc_float", fine_tuned_mrpc, "none"),
                                        ("mrpc_int8", fine_tuned_mrpc, "dynamic"),
                                        ("stsb_float", fine_tuned_stsb, "none"),
                                        ("stsb_static", fine_tuned_stsb, "static"))}


def run_client(export_dir: str, inputs: dict, tmp_path) -> tuple:
    """ONNX Runtime's output for `inputs` in a process that cannot import this project, and what it saw."""
    np.savez(str(tmp_path / "inputs.npz"), **inputs)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-I", "-c", CLIENT, os.path.join(export_dir, "model.onnx"),
                           str(tmp_path / "inputs.npz"), str(tmp_path / "outputs.npz")], cwd=str(tmp_path), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return np.load(str(tmp_path / "outputs.npz"))["arr_0"], json.loads(done.stdout.strip().splitlines()[-1])


def test_the_export_holds_the_model_and_what_a_client_needs(exports, bert_dir):
    for name, export_dir in exports.items():
        assert sorted(os.listdir(export_dir)) == ["assets.extra", "model.onnx"]
        assert sorted(os.listdir(os.path.join(export_dir, "assets.extra"))) == ["model_info.json", "vocab.txt"]
        assert not [p for p in os.listdir(os.path.dirname(export_dir)) if ".tmp" in p]
    with open(os.path.join(exports["mrpc_int8"], "assets.extra", "model_info.json")) as f:
        info = json.load(f)
    assert {key: info[key] for key in ("task", "labels", "do_lower_case", "max_seq_length", "output", "format",
                                       "quantization")} == {
        "task": "MRPC", "labels": ["0", "1"], "do_lower_case": True, "max_seq_length": 64,
        "output": "probabilities", "format": "onnx", "quantization": "dynamic"}
    assert Path(exports["mrpc_int8"], "assets.extra", "vocab.txt").read_bytes() == (bert_dir / "vocab.txt").read_bytes()


def test_int8_weights_take_at_most_30_percent_of_the_float_export(exports):
    float_size, int8_size = (os.path.getsize(os.path.join(exports[name], "model.onnx"))
                             for name in ("mrpc_float", "mrpc_int8"))
    assert int8_size <= 0.3 * float_size, (int8_size, float_size)


def test_onnx_runtime_without_this_code_computes_the_runs_own_predictions(exports, fine_tuned_mrpc, fine_tuned_stsb,
                                                                          tmp_path):
    """The float exports give test_results.tsv to 1e-4 on inputs cut to the batch's longest example; the int8 one
    stays within 0.1 of each probability (0.01 on average) and mostly picks the same label."""
    for name, run_dir, task_dir in (("mrpc_float", fine_tuned_mrpc, "MRPC"), ("stsb_float", fine_tuned_stsb, "STS-B"),
                                    ("mrpc_int8", fine_tuned_mrpc, "MRPC")):
        inputs = model_inputs(run_dir, task_dir, 64)
        longest = inputs["input_mask"].sum(axis=1).max()
        outputs, seen = run_client(exports[name], {k: v[:, :longest] for k, v in inputs.items()}, tmp_path)
        assert [i[0] for i in seen["inputs"]] == ["input_ids", "input_mask", "segment_ids"]
        assert [i[1] for i in seen["inputs"]] == ["tensor(int32)"] * 3
        assert seen["inputs"][0][2] == ["batch", "sequence"]
        expected = np.loadtxt(str(run_dir / "test_results.tsv"), ndmin=2 if task_dir == "MRPC" else 1)
        if name.endswith("float"):
            np.testing.assert_allclose(outputs, expected, atol=1e-4, err_msg=name)
        else:
            assert np.abs(outputs - expected).max() < 0.1 and np.abs(outputs - expected).mean() < 0.01
            assert (outputs.argmax(axis=1) == expected.argmax(axis=1)).mean() >= 0.9
            assert np.abs(outputs - expected).max() > 1e-6  # it is quantized
    assert seen["outputs"][0][:2] == ["probabilities", "tensor(float)"]


def test_static_int8_calibrates_on_the_runs_training_examples(exports, fine_tuned_stsb, tmp_path):
    """--quantize=static: the dense MatMuls become QLinearMatMul (uint8 activations, int8 weights), with ranges from
    the run's training examples, and the scores stay close to the float export's."""
    import onnx
    with open(os.path.join(exports["stsb_static"], "assets.extra", "model_info.json")) as f:
        info = json.load(f)
    assert info["quantization"] == "static" and info["calibration_examples"] == 300
    ops = [node.op_type for node in onnx.load(os.path.join(exports["stsb_static"], "model.onnx")).graph.node]
    # 2 layers of query, key, value, attention output, FFN in and out; the pooler and the head
    assert ops.count("QLinearMatMul") == 2 * 6 + 2
    inputs = model_inputs(fine_tuned_stsb, "STS-B", 64)
    static, _ = run_client(exports["stsb_static"], inputs, tmp_path)
    float_scores, _ = run_client(exports["stsb_float"], inputs, tmp_path)
    assert np.abs(static - float_scores).max() < 0.1 < np.abs(static - float_scores).max() * 1e6


def test_static_int8_needs_the_runs_training_data(fine_tuned_stsb, tmp_path):
    run_dir = tmp_path / "run"
    for path in fine_tuned_stsb.iterdir():
        (run_dir / path.name).parent.mkdir(exist_ok=True)
        if path.is_file():
            (run_dir / path.name).write_bytes(path.read_bytes())
    info = json.loads((run_dir / "run_info.json").read_text())
    info["settings"]["data_dir"]["path"] = str(tmp_path / "gone")
    (run_dir / "run_info.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match="--quantize=static calibrates on the run's training data, and its --data_dir "
                                        ".*gone is not found"):
        onnx_export.export_onnx(str(run_dir), str(tmp_path / "export"), quantize="static")
    with pytest.raises(UserError, match="--calibration_examples=0: it takes at least 1"):
        onnx_export.export_onnx(str(run_dir), str(tmp_path / "export"), quantize="static", calibration_examples=0)
    assert not (tmp_path / "export").exists()


def test_predict_runs_an_onnx_export_from_its_folder(exports, fine_tuned_mrpc, tmp_path):
    pairs = tmp_path / "pairs.tsv"
    rows = [line.split("\t") for line in (fine_tuned_mrpc.parent / "MRPC" / "test.tsv").read_text().splitlines()[1:]]
    pairs.write_text("".join("%s\t%s\n" % (row[3], row[4]) for row in rows))
    for model_dir in (str(fine_tuned_mrpc), exports["mrpc_float"]):
        predict.predict(model_dir, str(pairs), str(tmp_path / "out.tsv"), batch_size=7)
        lines = (tmp_path / "out.tsv").read_text().splitlines()
        assert lines[0] == "label\tp_0\tp_1" and len(lines) == 101
        probabilities = np.array([[float(x) for x in line.split("\t")[1:]] for line in lines[1:]])
        np.testing.assert_allclose(probabilities, np.loadtxt(str(fine_tuned_mrpc / "test_results.tsv")), atol=1e-4,
                                   err_msg=model_dir)


def test_evaluate_scores_the_run_and_its_exports_on_the_same_examples(exports, fine_tuned_mrpc, glue_dir):
    """MRPC's real dev set: the float export scores what the run scores; int8 within 2 points of F1."""
    run, exported, int8 = (evaluate.evaluate(model_dir, str(glue_dir / "MRPC"), batch_size=64)
                           for model_dir in (str(fine_tuned_mrpc), exports["mrpc_float"], exports["mrpc_int8"]))
    assert run["runtime"] == "tensorflow" and exported["runtime"] == int8["runtime"] == "onnxruntime"
    assert run["examples"] == exported["examples"] == int8["examples"] == 408
    assert abs(run["f1"] - exported["f1"]) < 1e-9 and abs(run["accuracy"] - exported["accuracy"]) < 1e-9
    assert abs(run["f1"] - int8["f1"]) < 0.02
    assert all(result["examples_per_second"] > 0 for result in (run, exported, int8))
    assert int8["model_bytes"] < 0.3 * exported["model_bytes"]
    assert abs(exported["model_bytes"] - run["model_bytes"]) < 0.02 * run["model_bytes"]  # float32 either way


def test_an_onnx_export_refuses_longer_inputs_in_one_line(exports):
    with pytest.raises(UserError, match="--max_seq_length=65: the export .* takes 3 to 64 tokens"):
        predict.OnnxPredictor(exports["stsb_float"], max_seq_length=65)


def test_the_export_folder_must_be_new_or_an_earlier_onnx_export(exports, fine_tuned_stsb, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds other files than an ONNX export's"):
        onnx_export.export_onnx(str(fine_tuned_stsb), str(tmp_path))
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(UserError, match="--quantize=int4: one of none, dynamic, static"):
        onnx_export.export_onnx(str(fine_tuned_stsb), str(tmp_path / "new"), quantize="int4")


def test_quantizing_a_saved_model_is_refused_in_one_line(fine_tuned_stsb, tmp_path):
    with pytest.raises(UserError, match=r"^--quantize=dynamic needs --format=onnx \(a SavedModel is exported in "
                                        r"float\)$"):
        export.main(["--output_dir=%s" % fine_tuned_stsb, "--export_dir=%s" % tmp_path, "--quantize=dynamic"])
    assert os.listdir(str(tmp_path)) == []


def test_without_onnx_runtime_the_error_names_the_packages(monkeypatch, fine_tuned_stsb, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    with pytest.raises(UserError, match="need the packages tf2onnx, onnx and onnxruntime .*requirements/tf1.txt"):
        onnx_export.export_onnx(str(fine_tuned_stsb), str(tmp_path / "export"))
    assert not (tmp_path / "export").exists()
