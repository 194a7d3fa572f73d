"""Tests for bert.data.processors: the task table, name lookup and the generic GLUE reader.

Real-data tests read the shared GLUE copy (`glue_dir` fixture); QQP, MNLI and QNLI train are not
in it, so they are covered by the hand-written fixtures in tests/fixtures/glue.
"""
import logging
import os

import pytest

from bert.errors import UserError
from bert.data.processors import (BadRowError, TASKS, InputExample, get_task, read_examples,
                             read_examples_with_stats)

# Official GLUE row counts for the splits present in the shared data.
REAL_COUNTS = [
    ("CoLA", "train", 8551), ("CoLA", "dev", 1043), ("CoLA", "test", 1063),
    ("SST-2", "train", 67349), ("SST-2", "dev", 872), ("SST-2", "test", 1821),
    ("MRPC", "train", 3668), ("MRPC", "dev", 408), ("MRPC", "test", 1725),
    ("STS-B", "train", 5749), ("STS-B", "dev", 1500), ("STS-B", "test", 1379),
    ("QNLI", "dev", 5463), ("QNLI", "test", 5463),
    ("RTE", "train", 2490), ("RTE", "dev", 277), ("RTE", "test", 3000),
    ("WNLI", "train", 635), ("WNLI", "dev", 71), ("WNLI", "test", 146),
    ("AX", "test", 1104),
]
# Official counts for splits missing from the shared data: checked only if a full GLUE_DIR has them.
FULL_GLUE_COUNTS = [
    ("QQP", "train", 363846), ("QQP", "dev", 40430), ("QQP", "test", 390965),
    ("MNLI", "train", 392702), ("MNLI", "dev", 9815), ("MNLI", "dev_mismatched", 9832),
    ("MNLI", "test", 9796), ("MNLI", "test_mismatched", 9847), ("QNLI", "train", 104743),
]

_cache = {}


def _read(root, name, split):
    """Read (and memoise) a split so the big files are parsed once per session."""
    key = (str(root), name, split)
    if key not in _cache:
        task = get_task(name)
        _cache[key] = read_examples_with_stats(task, os.path.join(str(root), task.directory), split)
    return _cache[key]


def _check_split(task_name, split, examples):
    task = get_task(task_name)
    labelled = task.splits[split].label_col is not None
    assert all(isinstance(e, InputExample) and e.text_a for e in examples)
    assert len({e.guid for e in examples}) == len(examples), "guids must be unique"
    assert all(e.guid.startswith(split + "-") for e in examples)
    pair = task.splits[split].text_b_col is not None
    assert all((e.text_b is not None) == pair for e in examples)
    if not labelled:
        assert all(e.label is None for e in examples)
    elif task.is_regression:
        assert all(isinstance(e.label, float) and 0.0 <= e.label <= 5.0 for e in examples)
    else:
        assert {e.label for e in examples} == set(task.labels)


# ---------------------------------------------------------------- task table and lookup

def test_table_has_every_glue_task():
    assert list(TASKS) == ["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI", "AX"]
    for name, task in TASKS.items():
        assert task.name == name
        assert get_task(name) is task


@pytest.mark.parametrize("alias, name", [
    ("MRPC", "MRPC"), ("mrpc", "MRPC"), ("sts-b", "STS-B"), ("stsb", "STS-B"), ("STS-B", "STS-B"),
    ("STS_B", "STS-B"), ("sst2", "SST-2"), ("SST-2", "SST-2"), ("cola", "CoLA"), ("Mnli", "MNLI"),
    ("ax", "AX"), ("AX", "AX"), ("diagnostic", "AX"), ("QNLI", "QNLI"), ("wnli", "WNLI"),
])
def test_get_task_aliases(alias, name):
    assert get_task(alias) is TASKS[name]


def test_get_task_unknown_lists_known_names():
    with pytest.raises(ValueError) as err:
        get_task("squad")
    message = str(err.value)
    assert "squad" in message
    for name in TASKS:
        assert name in message


def test_spec_properties():
    stsb, mnli, mrpc, ax = (get_task(n) for n in ("STS-B", "MNLI", "MRPC", "AX"))
    assert stsb.is_regression and stsb.num_labels == 1 and stsb.labels == ()
    assert stsb.metrics == ("spearman", "pearson")
    assert not mrpc.is_regression and mrpc.num_labels == 2 and mrpc.metrics == ("f1", "accuracy")
    assert get_task("QQP").metrics == ("f1", "accuracy")
    assert get_task("CoLA").metrics == ("mcc", "accuracy")
    assert mnli.num_labels == 3 and mnli.label_to_id == {"contradiction": 0, "entailment": 1, "neutral": 2}
    assert mnli.eval_splits == ("dev", "dev_mismatched")
    assert mnli.test_splits == ("test", "test_mismatched")
    assert mnli.splits["dev"].file == "dev_matched.tsv" and mnli.splits["test"].file == "test_matched.tsv"
    assert mrpc.eval_splits == ("dev",) and mrpc.test_splits == ("test",)
    assert ax.directory == "diagnostic" and list(ax.splits) == ["test"]
    assert ax.splits["test"].file == "diagnostic.tsv"
    assert ax.labels == mnli.labels and ax.eval_splits == () and ax.test_splits == ("test",)
    assert get_task("QQP").splits["train"].min_columns == 6
    assert mnli.splits["train"].min_columns == 12 and mnli.splits["dev"].min_columns == 16
    assert mnli.splits["test"].min_columns == 10
    with pytest.raises(Exception):  # frozen
        mrpc.name = "x"


# ---------------------------------------------------------------- real GLUE data

@pytest.mark.parametrize("name, split, count", REAL_COUNTS)
def test_real_split_counts_and_labels(glue_dir, name, split, count):
    examples, stats = _read(glue_dir, name, split)
    assert len(examples) == count
    assert stats.skipped == {} and stats.kept == {}, "the verified GLUE files have no problem rows"
    _check_split(name, split, examples)


@pytest.mark.parametrize("name, split, count", FULL_GLUE_COUNTS)
def test_full_glue_split_counts(glue_dir, name, split, count):
    task = get_task(name)
    if not os.path.exists(os.path.join(str(glue_dir), task.directory, task.splits[split].file)):
        pytest.skip("%s %s is not in this GLUE copy" % (name, split))
    examples, _ = _read(glue_dir, name, split)
    assert len(examples) == count
    _check_split(name, split, examples)


def test_real_first_rows(glue_dir):
    mrpc = _read(glue_dir, "MRPC", "train")[0][0]
    assert mrpc == InputExample(
        "train-0",
        'Amrozi accused his brother, whom he called "the witness", of deliberately distorting his evidence.',
        'Referring to him as only "the witness", Amrozi accused his brother of deliberately distorting '
        'his evidence.',
        "1")
    assert _read(glue_dir, "MRPC", "test")[0][0].guid == "test-0"
    cola = _read(glue_dir, "CoLA", "train")[0]
    assert cola[0] == InputExample("train-0", "Our friends won't buy this analysis, let alone the next one we propose.",
                                   None, "1")
    cola_dev = _read(glue_dir, "CoLA", "dev")[0]  # the file has no trailing newline
    assert cola_dev[-1] == InputExample("dev-1042", "John talked to Bill about himself.", None, "1")
    assert _read(glue_dir, "CoLA", "test")[0][0] == InputExample("test-0", "Bill whistled past the house.", None, None)
    sst = _read(glue_dir, "SST-2", "train")[0][0]
    assert sst == InputExample("train-0", "hide new secretions from the parental units ", None, "0")
    stsb = _read(glue_dir, "STS-B", "train")[0][0]
    assert stsb == InputExample("train-0", "A plane is taking off.", "An air plane is taking off.", 5.0)
    assert isinstance(stsb.label, float)
    qnli = _read(glue_dir, "QNLI", "dev")[0][0]
    assert qnli.text_a == "What came into force after the new constitution was herald?"
    assert qnli.label == "entailment"
    ax = _read(glue_dir, "AX", "test")[0][0]
    assert ax == InputExample("test-0", "The cat sat on the mat.", "The cat did not sit on the mat.", None)


def test_rte_leading_quote_is_literal_text(glue_dir):
    examples = _read(glue_dir, "RTE", "train")[0]
    quirk = {e.guid: e for e in examples}["train-2164"]
    assert quirk.text_a.startswith(' "That film wasn\'t too successful')
    assert quirk.text_a.endswith("in 1983.")
    assert quirk.text_b == 'The film "WarGames" was shot in 1983.'
    assert quirk.label == "not_entailment"
    assert examples[2165].guid == "train-2165"  # the rows after it are intact


def test_read_examples_accepts_task_names(glue_dir):
    examples = read_examples("wnli", os.path.join(str(glue_dir), "WNLI"), "dev")
    assert len(examples) == 71


# ---------------------------------------------------------------- fixtures (QQP, MNLI, QNLI train)

def test_qqp_fixture_skips_and_counts_short_rows(fixtures_dir, caplog):
    qqp = get_task("QQP")
    with caplog.at_level(logging.WARNING, logger="bert.data.processors"):
        examples, stats = read_examples_with_stats(qqp, str(fixtures_dir / "QQP"), "train")
    assert stats.skipped == {"fewer than 6 columns": [4, 5]} and stats.kept == {"an empty sentence": [7]}
    assert [e.guid for e in examples] == ["train-201", "train-202", "train-204", "train-205", "train-206"]
    assert examples[2].text_a == 'Is it "too late" to learn the piano at forty?'
    assert examples[3].text_b == "" and examples[3].label == "0"
    records = [r for r in caplog.records if r.name == "bert.data.processors"]
    assert len(records) == 2
    message = records[0].getMessage()
    assert "skipped 2" in message and "train.tsv" in message and "lines 4, 5" in message
    assert "kept 1 row(s) with an empty sentence" in records[1].getMessage()
    assert len(read_examples(qqp, str(fixtures_dir / "QQP"), "train")) == 5
    _check_split("QQP", "train", examples)


def test_qqp_fixture_dev_and_test(fixtures_dir):
    dev = read_examples("QQP", str(fixtures_dir / "QQP"), "dev")
    assert [e.guid for e in dev] == ["dev-9001", "dev-9002", "dev-9003"]
    assert dev[0] == InputExample("dev-9001", "How do tides work?", "What causes ocean tides?", "1")
    test = read_examples("QQP", str(fixtures_dir / "QQP"), "test")
    assert test[1] == InputExample("test-1", "How do bees make honey?", "Why do cats purr?", None)


def test_mnli_fixture_matched_and_mismatched(fixtures_dir):
    mnli, folder = get_task("MNLI"), str(fixtures_dir / "MNLI")
    train = read_examples(mnli, folder, "train")
    assert len(train) == 4
    assert train[1] == InputExample("train-1", "We usually go camping by the lake in summer.",
                                    "We never go camping.", "contradiction")
    matched = read_examples(mnli, folder, "dev")
    mismatched = read_examples(mnli, folder, "dev_mismatched")
    assert len(matched) == 3 and len(mismatched) == 4
    # The label is gold_label (last column), not label1: they differ in the third matched row.
    assert [e.label for e in matched] == ["contradiction", "entailment", "neutral"]
    assert matched[0].text_a == "The report was published last week."
    assert mismatched[0].guid == "dev_mismatched-0"
    assert mismatched[1].text_b == "English spelling is perfectly regular."
    test_m = read_examples(mnli, folder, "test")
    test_mm = read_examples(mnli, folder, "test_mismatched")
    assert len(test_m) == 2 and len(test_mm) == 3
    assert test_mm[0] == InputExample("test_mismatched-0", "The flight departed twenty minutes late.",
                                      "The flight left on time.", None)
    for split in mnli.splits:
        _check_split("MNLI", split, read_examples(mnli, folder, split))


def test_qnli_fixture_train(fixtures_dir):
    examples = read_examples("QNLI", str(fixtures_dir / "QNLI"), "train")
    assert [e.label for e in examples] == ["entailment", "not_entailment", "entailment"]
    assert examples[0].text_a == "When was the old lighthouse built?"


# ---------------------------------------------------------------- error handling and encodings

def _write(path, text):
    with open(str(path), "wb") as f:
        f.write(text.encode("utf-8"))


def test_missing_file_names_path_task_and_split(tmp_path):
    with pytest.raises(UserError) as err:
        read_examples("RTE", str(tmp_path), "dev")
    message = str(err.value)
    assert str(tmp_path / "dev.tsv") in message and "RTE" in message and "dev" in message


def test_unknown_split():
    with pytest.raises(ValueError, match="dev_mismatched"):
        read_examples("RTE", "/nonexistent", "dev_mismatched")


def test_unknown_label_names_file_line_and_label(tmp_path):
    _write(tmp_path / "train.tsv", "index\tsentence1\tsentence2\tlabel\n"
                                   "0\tA.\tB.\tentailment\n"
                                   "1\tC.\tD.\tcontradiction\n")
    with pytest.raises(ValueError) as err:
        read_examples("RTE", str(tmp_path), "train")
    message = str(err.value)
    assert "train.tsv" in message and "line 3" in message and "contradiction" in message


def test_bad_stsb_score(tmp_path):
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    _write(tmp_path / "dev.tsv", header + "0\tg\tf\t2012\t0001\tnone\tnone\tA.\tB.\t5.5\n")
    with pytest.raises(ValueError, match="line 2"):
        read_examples("STS-B", str(tmp_path), "dev")
    _write(tmp_path / "dev.tsv", header + "0\tg\tf\t2012\t0001\tnone\tnone\tA.\tB.\thigh\n")
    with pytest.raises(ValueError, match="high"):
        read_examples("STS-B", str(tmp_path), "dev")


def test_bom_and_crlf_are_handled(tmp_path):
    # A headerless CoLA file with a BOM and CRLF line ends: neither may leak into the data.
    _write(tmp_path / "train.tsv", "\ufeffgj04\t1\t\tFirst sentence.\r\ngj04\t0\t*\tSecond \"quoted\r\n")
    examples = read_examples("CoLA", str(tmp_path), "train")
    assert examples == [InputExample("train-0", "First sentence.", None, "1"),
                        InputExample("train-1", 'Second "quoted', None, "0")]
    _write(tmp_path / "dev.tsv", "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n1\t1\t2\tA b.\tC d.\r\n")
    assert read_examples("MRPC", str(tmp_path), "dev") == [InputExample("dev-0", "A b.", "C d.", "1")]


def test_blank_and_short_rows_are_counted(tmp_path):
    _write(tmp_path / "test.tsv", "index\tsentence\n0\tfine\n\n1\n2\tok\n")
    examples, stats = read_examples_with_stats("SST-2", str(tmp_path), "test")
    assert [e.guid for e in examples] == ["test-0", "test-2"]
    assert stats.num_skipped == 2 and stats.lines == 5 and stats.examples == 2


def test_strict_makes_a_short_row_fatal(fixtures_dir):
    with pytest.raises(BadRowError, match=r"QQP/train.tsv line 4: fewer than 6 columns"):
        read_examples("QQP", str(fixtures_dir / "QQP"), "train", strict=True)


def test_empty_sentences_are_kept_and_counted(tmp_path):
    _write(tmp_path / "dev.tsv", "index\tsentence1\tsentence2\tlabel\n0\t \tB.\tentailment\n1\tA.\tB.\tentailment\n")
    examples, stats = read_examples_with_stats("RTE", str(tmp_path), "dev")
    assert [e.text_a for e in examples] == [" ", "A."]
    assert stats.kept == {"an empty sentence": [2]} and stats.as_dict()["kept_with_warning"] == {"an empty sentence": 1}
    with pytest.raises(BadRowError, match="line 2: an empty sentence"):
        read_examples("RTE", str(tmp_path), "dev", strict=True)


def test_header_in_a_file_that_has_none_is_skipped(tmp_path, caplog):
    _write(tmp_path / "train.tsv", "source\tlabel\tmark\tsentence\ngj04\t1\t\tA fine sentence.\n")
    with caplog.at_level(logging.WARNING, logger="bert.data.processors"):
        examples, stats = read_examples_with_stats("CoLA", str(tmp_path), "train")
    assert examples == [InputExample("train-0", "A fine sentence.", None, "1")]
    assert stats.skipped == {"a header line (CoLA train.tsv files have none)": [1]}
    assert "skipped 1 row(s) with a header line" in caplog.text
    with pytest.raises(BadRowError, match="line 1: a header line"):
        read_examples("CoLA", str(tmp_path), "train", strict=True)
    # A bad label on the first line is still a bad label, not a header.
    _write(tmp_path / "train.tsv", "gj04\t2\t\tA fine sentence.\n")
    with pytest.raises(ValueError, match="unknown label '2'"):
        read_examples("CoLA", str(tmp_path), "train")


@pytest.mark.parametrize("task,split,first_line", [
    ("SST-2", "dev", "a gripping film .\t1"),
    ("MRPC", "test", "0\t1089874\t1089925\tA b.\tC d."),
    ("STS-B", "train", "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane.\tAn airplane.\t5.000"),
])
def test_missing_header_line_is_read_as_data(tmp_path, task, split, first_line):
    spec = get_task(task).splits[split]
    _write(tmp_path / spec.file, first_line + "\n")
    examples, stats = read_examples_with_stats(task, str(tmp_path), split)
    assert len(examples) == 1 and list(stats.kept) == ["no header line (%s %s files start with one)" % (task, spec.file)]
    with pytest.raises(BadRowError, match="line 1: no header line"):
        read_examples(task, str(tmp_path), split, strict=True)
