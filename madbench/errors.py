"""User-facing errors: one line that says what is wrong and how to fix it.

The CLI catches :class:`MadbenchError` and prints ``madbench: error: <message>``
with exit code 2, never a traceback. Raise it for every problem a user can fix
(bad config, unknown name, missing file); let real bugs raise normally.
"""


class MadbenchError(Exception):
    """An error caused by user input; its message is shown as a single line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
