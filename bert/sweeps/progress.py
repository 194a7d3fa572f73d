"""What a running fine-tune is doing, for the sweep's terminal: its latest progress, read from the log.txt it
writes (the sweep's only channel to it: a fine-tune is a subprocess whose output goes to that file), and the one
status line the sweep keeps on the terminal while the run goes on.

training_hooks.ProgressHook logs `train step 120/343 (35%)  loss ...  84.3 examples/s  time left 2m39s`
about every 30 s; evaluation and prediction start with `***** Eval on dev: 408 examples, ...` and
`***** Predict MRPC test: 1725 examples *****`. Nothing here reads global state: the sweep hands in the log's
offset, the stream and the clock, so the tests run it in-process.
"""
import re
import shutil
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, TextIO, Union

from bert.formatting import format_duration, parse_duration

TRAIN_LINE = re.compile(r"train step (\d+)/(\d+) \(\d+%\) .*?  ([\d.]+) examples/s  time left ((?:\d+h)?(?:\d+m)?\d+s)")
EVAL_LINE = re.compile(r"\*\*\*\*\* Eval on (\S+): (\d+) examples")
PREDICT_LINE = re.compile(r"\*\*\*\*\* Predict (\S+) (\S+): (\d+) examples \*\*\*\*\*")
CLEAR_LINE = "\r\x1b[K"  # back to the line's start, and erase it to its end


@dataclass
class Training:
    """A run's latest training progress line."""

    step: int
    steps: int
    examples_per_second: float
    seconds_left: int  # of the training, as the run estimates it

    def describe(self, now: float) -> str:
        return "step %d/%d (%.0f%%), %.1f examples/s, %s left in this run" % (
            self.step, self.steps, 100.0 * self.step / self.steps, self.examples_per_second,
            format_duration(self.seconds_left))


@dataclass
class Inference:
    """A run evaluating a dev split or predicting a test split; how long it takes is not logged, so it counts as
    no time left (evaluation is short beside training)."""

    what: str  # "evaluating dev", "predicting MNLI test_matched"
    examples: int
    started: float  # when the follower saw it start, by its clock
    seconds_left = 0

    def describe(self, now: float) -> str:
        return "%s (%d examples), %s" % (self.what, self.examples, format_duration(now - self.started))


Progress = Union[Training, Inference]


def parse_line(line: str, now: float) -> Optional[Progress]:
    """The progress a log line tells of, if any (`now` dates the start of an evaluation or prediction)."""
    found = TRAIN_LINE.search(line)
    if found:
        return Training(int(found.group(1)), int(found.group(2)), float(found.group(3)), parse_duration(found.group(4)))
    found = EVAL_LINE.search(line)
    if found:
        return Inference("evaluating " + found.group(1), int(found.group(2)), now)
    found = PREDICT_LINE.search(line)
    if found:
        return Inference("predicting %s %s" % (found.group(1), found.group(2)), int(found.group(3)), now)
    return None


class LogFollower:
    """Follows a run's log from `offset` on: the log is appended to by every attempt of the run, so the sweep
    starts it past the current attempt's header, and the progress of an earlier attempt never shows. Each poll
    reads only what was appended since the last; a line still being written waits for its end."""

    def __init__(self, path: str, offset: int, clock: Callable[[], float] = time.time):
        self.path, self.offset, self.clock = path, offset, clock
        self.partial = b""
        self.latest: Optional[Progress] = None

    def poll(self) -> Optional[Progress]:
        """The latest progress the log has told of so far (None before its first progress line)."""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            appended = f.read()
        self.offset += len(appended)
        lines: List[bytes] = (self.partial + appended).split(b"\n")
        self.partial = lines.pop()
        now = self.clock()
        for line in lines:
            self.latest = parse_line(line.decode("utf-8", errors="replace"), now) or self.latest
        return self.latest


def status_text(progress: Progress, now: float, elapsed: float, train_examples: int, later_examples: int,
                seconds_per_example: List[float]) -> str:
    """`step 120/343 (35%), 84.3 examples/s, 2m39s left in this run; sweep about 1h05m12s left`.

    The sweep's time left is this run's plus the later runs' training examples at the seconds per example of
    the runs finished so far (their evaluation included), as the line after each run estimates it; before any
    has finished, at this run's own: its elapsed seconds and time left over its training examples.
    """
    per_example = (sum(seconds_per_example) / len(seconds_per_example) if seconds_per_example
                   else (elapsed + progress.seconds_left) / max(train_examples, 1))
    return "%s; sweep about %s left" % (progress.describe(now),
                                         format_duration(progress.seconds_left + later_examples * per_example))


class StatusLine:
    """The sweep's status line. On a terminal, one line rewritten in place (cut to the terminal's width, so that
    it never wraps onto a second line, which `\\r` could not go back over), and cleared before any other output;
    elsewhere (a log file, CI), where `\\r` would pile up, a plain line at most every `every` seconds."""

    def __init__(self, stream: TextIO, every: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.stream, self.every, self.clock = stream, every, clock
        self.on_terminal = stream.isatty()
        self.shown = False  # a status line is on the terminal
        self.last_printed = clock()  # the sweep has just said what it runs: the first status comes `every` later

    def show(self, text: str) -> None:
        line = "[sweep] " + text
        if self.on_terminal:
            self.stream.write("\r" + line[:shutil.get_terminal_size().columns - 1] + "\x1b[K")
            self.shown = True
        elif self.clock() - self.last_printed >= self.every:
            self.stream.write(line + "\n")
            self.last_printed = self.clock()
        else:
            return
        self.stream.flush()

    def clear(self) -> None:
        """Leaves the cursor at the start of an empty line, for the sweep's next line."""
        if self.shown:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
            self.shown = False
