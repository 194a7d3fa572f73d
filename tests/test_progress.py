"""The sweep's view of a running fine-tune (bert/sweeps/progress.py): run_classifier's progress lines as it writes them,
a log followed across appended attempts, and the status line on a terminal and in a log file (a real sweep's
output: tests/test_sweep.py)."""
import io

from bert.formatting import parse_duration
from bert.sweeps.progress import Inference, LogFollower, StatusLine, Training, parse_line, status_text

TRAIN = "INFO:tensorflow:train step 120/343 (35%)  loss 0.4123  lr 1.52e-05  84.3 examples/s  time left 2m39s"


def test_training_lines_as_run_classifier_logs_them():
    assert parse_line(TRAIN, 0.0) == Training(120, 343, 84.3, 159)
    distilled_pruned = ("INFO:tensorflow:train step 7/229 (3%)  loss 0.6931  soft loss 0.0123  lr 3.06e-06  "
                        "12.0 examples/s  time left 1h02m07s  sparsity 0.412")
    assert parse_line(distilled_pruned, 0.0) == Training(7, 229, 12.0, 3727)
    fp16 = ("INFO:tensorflow:train step 343/343 (100%)  loss 0.1000  lr 0.00e+00  300.5 examples/s  time left 0s"
            "  3 updates skipped (gradients not finite)")
    assert parse_line(fp16, 0.0) == Training(343, 343, 300.5, 0)
    assert [parse_duration(text) for text in ("45s", "3m05s", "1h02m07s", "2h00m00s")] == [45, 185, 3727, 7200]


def test_evaluation_and_prediction_lines():
    assert parse_line("INFO:tensorflow:***** Eval on dev: 408 examples, batch 32 *****", 5.0) == Inference(
        "evaluating dev", 408, 5.0)
    assert parse_line("INFO:tensorflow:***** Eval on dev_mismatched: 9832 examples, batch 32 *****", 5.0).what == \
        "evaluating dev_mismatched"
    assert parse_line("INFO:tensorflow:***** Predict MRPC test: 1725 examples *****", 5.0) == Inference(
        "predicting MRPC test", 1725, 5.0)
    for other in ("INFO:tensorflow:***** Eval results *****", "INFO:tensorflow:Saving checkpoints for 20 into x",
                  "INFO:tensorflow:***** Training: 3668 examples, batch 32, 343 steps (34 warmup) *****"):
        assert parse_line(other, 5.0) is None


def test_the_follower_reads_only_the_current_attempt_and_whole_lines(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("\n===== attempt 1\n" + TRAIN + "\nINFO:tensorflow:***** Eval on dev: 408 examples, batch 32 *****\n"
                   "\n===== attempt 2\n")
    clock = iter([10.0, 11.0, 12.0, 13.0]).__next__
    follower = LogFollower(str(log), log.stat().st_size, clock)
    assert follower.poll() is None  # attempt 1's progress does not count
    with open(str(log), "a") as f:
        f.write("INFO:tensorflow:Restoring parameters from model.ckpt-100\n" + TRAIN.replace("120/343", "130/343")[:50])
    assert follower.poll() is None  # the progress line is not complete yet
    with open(str(log), "a") as f:
        f.write(TRAIN[50:] + "\n")
    assert follower.poll() == Training(130, 343, 84.3, 159)
    with open(str(log), "a") as f:
        f.write("INFO:tensorflow:Loss for final step: 0.1.\nINFO:tensorflow:***** Eval on dev: 408 examples, batch 32 "
                "*****\nINFO:tensorflow:Restoring parameters from model.ckpt-343\n")
    assert follower.poll() == Inference("evaluating dev", 408, 13.0)  # dated by the poll that saw it


def test_status_text_and_the_sweeps_time_left():
    training = Training(120, 343, 84.3, 159)
    # this run's 159 s, then 3000 examples at the finished runs' 0.6 s each
    assert status_text(training, 0.0, 41.0, 1000, 3000, [0.5, 0.7]) == \
        "step 120/343 (35%), 84.3 examples/s, 2m39s left in this run; sweep about 32m39s left"
    # no run finished yet: at this run's own (41 s + 159 s) / 1000 examples
    assert status_text(training, 0.0, 41.0, 1000, 3000, []).endswith("; sweep about 12m39s left")
    evaluating = Inference("evaluating dev", 408, 100.0)
    assert status_text(evaluating, 112.0, 200.0, 1000, 0, []) == \
        "evaluating dev (408 examples), 12s; sweep about 0s left"


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_one_line_is_rewritten_in_place_within_its_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")  # what shutil.get_terminal_size reads first
    terminal = FakeTerminal()
    status = StatusLine(terminal)
    status.show("(1/2) MRPC lr=3e-5: step 1/343")
    status.show("(1/2) MRPC lr=3e-5: step 120/343 (35%), 84.3 examples/s, 2m39s left in this run")
    status.clear()
    status.clear()  # nothing to clear any more
    assert terminal.getvalue() == ("\r[sweep] (1/2) MRPC lr=3e-5: step 1/343\x1b[K"
                                   "\r[sweep] (1/2) MRPC lr=3e-5: step 120/34\x1b[K"  # 39 characters: no wrap
                                   "\r\x1b[K")


def test_elsewhere_a_plain_line_at_most_every_interval():
    now = [0.0]
    log = io.StringIO()
    status = StatusLine(log, every=60.0, clock=lambda: now[0])
    for now[0], text in ((1.0, "a"), (59.0, "b"), (61.0, "c"), (100.0, "d"), (121.0, "e"), (122.0, "f")):
        status.show(text)
    status.clear()
    assert log.getvalue() == "[sweep] c\n[sweep] e\n"

