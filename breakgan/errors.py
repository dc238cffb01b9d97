"""The one exception type for problems the user can cause (bad files, bad options).

The CLI prints it as a single line and exits non-zero; anything else is a bug and keeps its
traceback.
"""


class BreakganError(Exception):
    """A user-facing error. The message should name the file and what is wrong with it."""

    def __init__(self, message: str, *, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code
