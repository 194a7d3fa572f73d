"""The one exception type for mistakes a user can fix: wrong flags, missing or malformed input files, configs.

run_classifier.py reports a UserError in one line (`error: ...`) without a traceback; any other exception is
a bug of ours and keeps its traceback. It is a ValueError, so callers that test a value by trying it (is this
folder a task's name?) keep working.
"""
import sys
from typing import Callable, List, Optional


class UserError(ValueError):
    """A problem with the flags or input files, explained in its message."""


def exit_on_user_error(main: Callable[[Optional[List[str]]], None], argv: Optional[List[str]] = None) -> None:
    """Runs a command-line tool's `main(argv)`; a UserError ends it with exit status 1 and one `error: ...` line
    on stderr per line of its message (bert/serving/predict.py lists every bad input row so), without a traceback."""
    try:
        main(argv)
    except UserError as error:
        sys.stderr.write("".join("error: %s\n" % line for line in str(error).splitlines()))
        sys.exit(1)
