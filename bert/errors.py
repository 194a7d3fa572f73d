"""The one exception type for mistakes a user can fix: wrong flags, missing or malformed input files, configs.

run_classifier.py reports a UserError in one line (`error: ...`) without a traceback; any other exception is
a bug of ours and keeps its traceback. It is a ValueError, so callers that test a value by trying it (is this
folder a task's name?) keep working.
"""


class UserError(ValueError):
    """A problem with the flags or input files, explained in its message."""
