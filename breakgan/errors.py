"""The one exception type for problems the user can cause (bad files, bad options).

The CLI prints it as a single line and exits non-zero; anything else is a bug and keeps its
traceback.
"""


class BreakganError(Exception):
    """A user-facing error. The message should name the file and what is wrong with it."""

    def __init__(self, message: str, *, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def shown(value, width: int = 40) -> str:
    """A user's value in an error line: quoted if text, cut to `width` characters, since names and values
    can arrive from files and the network at any length."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= width else text[:width - 3] + "..."
