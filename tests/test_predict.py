"""bert/serving/predict.py: raw text in, the run's own predictions out, in input order; bad lines named one by one.

The runs are conftest's: a pruned embedded-model MRPC run and a dense tiny STS-B run, each with run_classifier's
test_results.tsv for the test examples that the tests here hand bert.serving.predict as raw text.
"""
import json
import subprocess
import sys

import numpy as np
import pytest

from bert.data import processors
from bert.serving import predict
from bert.errors import UserError
from conftest import REPO_ROOT

MRPC = processors.get_task("MRPC")


def run_test_examples(run_dir, task_dir: str):
    return processors.read_examples(task_dir, str(run_dir.parent / task_dir), "test")


def read_output(path_or_text, from_text=False):
    lines = (path_or_text if from_text else path_or_text.read_text()).splitlines()
    return lines[0], [line.split("\t") for line in lines[1:]]


def test_raw_pairs_get_run_classifiers_probabilities_in_input_order(tmp_path, fine_tuned_mrpc):
    examples = run_test_examples(fine_tuned_mrpc, "MRPC")
    (tmp_path / "pairs.tsv").write_text("".join("%s\t%s\n" % (e.text_a, e.text_b) for e in examples), encoding="utf-8")
    predict.predict(str(fine_tuned_mrpc), str(tmp_path / "pairs.tsv"), str(tmp_path / "out.tsv"), batch_size=7)
    header, rows = read_output(tmp_path / "out.tsv")
    assert header == "label\tp_0\tp_1"
    expected = np.loadtxt(str(fine_tuned_mrpc / "test_results.tsv"))
    probabilities = np.array([[float(p) for p in row[1:]] for row in rows])
    # batches of 7 from length-sorted examples (run_classifier's were of 16): the order comes back all the same
    np.testing.assert_allclose(probabilities, expected, atol=1e-4)
    assert [row[0] for row in rows] == [MRPC.labels[i] for i in expected.argmax(axis=1)]
    assert len(set(row[0] for row in rows)) == 2


def test_json_lines_from_stdin_to_stdout_with_tensorflows_ops(fine_tuned_mrpc):
    examples = run_test_examples(fine_tuned_mrpc, "MRPC")
    lines = "".join(json.dumps({"idx": i, "sentence1": e.text_a, "sentence2": e.text_b}) + "\n"
                    for i, e in enumerate(examples))
    done = subprocess.run([sys.executable, "-m", "bert.serving.predict", "--model_dir=%s" % fine_tuned_mrpc,
                           "--fused_kernels=false"], input=lines, cwd=str(REPO_ROOT), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    header, rows = read_output(done.stdout, from_text=True)
    assert header == "label\tp_0\tp_1"
    np.testing.assert_allclose(np.array([[float(p) for p in row[1:]] for row in rows]),
                               np.loadtxt(str(fine_tuned_mrpc / "test_results.tsv")), atol=1e-4)


def test_a_regression_writes_scores(tmp_path, fine_tuned_stsb):
    examples = run_test_examples(fine_tuned_stsb, "STS-B")
    (tmp_path / "pairs.tsv").write_text("".join("%s\t%s\n" % (e.text_a, e.text_b) for e in examples), encoding="utf-8")
    predict.predict(str(fine_tuned_stsb), str(tmp_path / "pairs.tsv"), str(tmp_path / "out.tsv"))
    header, rows = read_output(tmp_path / "out.tsv")
    assert header == "score"
    np.testing.assert_allclose([float(row[0]) for row in rows], np.loadtxt(str(fine_tuned_stsb / "test_results.tsv")),
                               atol=1e-4)


def problems(lines, task=MRPC, pairs=True, input_format="auto"):
    with pytest.raises(UserError) as error:
        predict.read_examples(lines, "in.txt", task, pairs, input_format)
    return str(error.value).splitlines()


def test_every_bad_tsv_line_is_named_with_its_file_and_line():
    assert problems([b"a\tb\n", b"only one text\n", b"a\t \n", b"x\ty\tz\r\n", b"\n", b"c\td"]) == [
        "in.txt line 2: 1 TAB-separated column, but MRPC takes two texts",
        "in.txt line 3: empty text in column 2",
        "in.txt line 4: 3 TAB-separated columns, but MRPC takes two texts",
        "in.txt line 5: 1 TAB-separated column, but MRPC takes two texts"]
    sst2 = processors.get_task("SST-2")
    assert problems([b"fine\n", b"a\tb\n", b"\n"], sst2, pairs=False) == [
        "in.txt line 2: 2 TAB-separated columns, but SST-2 takes one text", "in.txt line 3: empty text in column 1"]
    assert problems([b"ok\tfine\n", b"\xff\tb\n"]) == ["in.txt line 2: not UTF-8 text (invalid start byte at byte 0)"]
    assert problems([]) == ["in.txt: no input lines"]
    many = problems([b"one\n"] * 25)
    assert len(many) == 21 and many[-1] == "in.txt: 5 more bad lines"


def test_every_bad_json_line_is_named_with_its_file_and_line():
    found = problems([b'{"sentence1": "a", "sentence2": "b", "label": 1}\n', b'{"sentence1": "a"\n', b"[1, 2]\n",
                      b'{"sentence1": "a"}\n', b'{"sentence1": "", "sentence2": "b"}\n',
                      b'{"sentence1": 3, "sentence2": "b"}\n'])
    assert found[0].startswith("in.txt line 2: not JSON (Expecting ',' delimiter: line 1 column 18")  # json's words
    assert found[1:] == [
        'in.txt line 3: MRPC takes a JSON object with "sentence1" and "sentence2"',
        'in.txt line 4: MRPC takes a JSON object with "sentence1" and "sentence2"',
        'in.txt line 5: "sentence1" is not a non-empty string',
        'in.txt line 6: "sentence1" is not a non-empty string']
    sst2 = processors.get_task("SST-2")
    assert problems([b'{"sentence1": "a", "sentence2": "b"}\n'], sst2, pairs=False) == [
        'in.txt line 1: SST-2 takes a JSON object with "sentence"']
    # a TSV line whose text starts with "{" is read as the TSV it is when told so
    examples = predict.read_examples([b"{braces} a\tb\n"], "in.txt", MRPC, True, input_format="tsv")
    assert (examples[0].text_a, examples[0].text_b) == ("{braces} a", "b")


def test_bad_input_ends_the_command_with_its_errors_and_no_output(fine_tuned_mrpc):
    done = subprocess.run([sys.executable, "-m", "bert.serving.predict", "--model_dir=%s" % fine_tuned_mrpc],
                          input="a\tb\nno pair\n", cwd=str(REPO_ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == ("error: <stdin> line 2: 1 TAB-separated column, but MRPC takes "
                                                    "two texts")
