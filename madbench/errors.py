"""User-facing errors: one line that says what is wrong and how to fix it.

The CLI catches :class:`MadbenchError` and prints ``madbench: error: <message>``
with exit code 2, never a traceback. Raise it for every problem a user can fix
(bad config, unknown name, missing file); let real bugs raise normally.
"""


class MadbenchError(Exception):
    """An error caused by user input; its message is shown as a single line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


_DISK_FULL = ("No space left on device", "Disk quota exceeded", "File too large")


def is_disk_full(exc: BaseException) -> bool:
    """True for 'no space left' and its cousins, whoever raised it (OSError, safetensors, torch)."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    return any(text in str(exc) for text in _DISK_FULL)


def disk_full_message(exc: BaseException, then: str) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return f"no space left to write ({first}); free disk space, then {then}"
