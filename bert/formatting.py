"""How numbers read in what the project prints and writes: durations and percentages.

Pure helpers, shared by layers that must not import each other: training's progress lines
(bert/training/hooks.py) print durations that the sweep's terminal (bert/sweeps/progress.py) reads back, and
the sweep's log and reports (bert/sweeps/) show the same durations and percentages.
"""
import re

DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(\d+)s$")


def format_duration(seconds: float) -> str:
    """Seconds as the paper-free but readable "11m32s" / "2h05m07s" / "45s"."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return "%dh%02dm%02ds" % (hours, minutes, secs)
    return "%dm%02ds" % (minutes, secs) if minutes else "%ds" % secs


def parse_duration(text: str) -> int:
    """The seconds of format_duration's "45s", "3m05s" or "1h02m07s"."""
    hours, minutes, seconds = DURATION.match(text).groups()
    return 3600 * int(hours or 0) + 60 * int(minutes or 0) + int(seconds)


def percent(value: float) -> str:
    """A fraction in percent with one decimal: 0.8413 -> "84.1"."""
    return "%.1f" % (100.0 * value)
