"""Refuse corpus files that are not text before any training, naming the actual problem.

    madbench run data.corpus=/bin/ls.txt        # refused: not text (binary), not a late AssertionError
    madbench run data.corpus=rows.jsonl         # refused: line 3 is a number / 'text' holds an object

Called by :mod:`madbench.data.corpus` on every user file: a plain-text file must decode as
text with few unprintable characters; every line of a JSONL file must be a JSON object;
the configured text field must hold strings (not objects, lists or numbers, which would
otherwise be trained on as their Python repr).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, List

from madbench.errors import MadbenchError

MAX_UNPRINTABLE = 0.10  # share of undecodable or control characters tolerated (a latin-1 text has a few %)
SAMPLE_BYTES = 1 << 20  # how much of a file is inspected


def unprintable_share(text: str) -> float:
    if not text:
        return 0.0
    bad = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\n\r\t\f\v") or ord(ch) == 127)
    return bad / len(text)


def check_text_file(file: Path) -> None:
    """A .txt corpus file must be text: mostly printable, no NUL bytes."""
    with open(file, "rb") as handle:
        raw = handle.read(SAMPLE_BYTES)
    if b"\x00" in raw:
        raise MadbenchError(f"corpus file {file} is binary (it holds NUL bytes), not text; give plain-text files "
                            "(UTF-8, passages separated by blank lines)")
    share = unprintable_share(raw.decode("utf-8", errors="replace"))
    if share > MAX_UNPRINTABLE:
        raise MadbenchError(f"corpus file {file} does not look like text ({share:.0%} of its characters are not "
                            "printable UTF-8); give plain-text files (UTF-8, passages separated by blank lines)")


def check_jsonl_file(file: Path, text_field: str) -> None:
    """Every non-blank line of a .jsonl corpus file is a JSON object (checked before ``datasets`` reads it)."""
    if file.suffix != ".jsonl":
        return
    with open(file, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise MadbenchError(f"corpus file {file} line {number} is not UTF-8 text; is it the right file?")
            except json.JSONDecodeError as exc:
                raise MadbenchError(f"corpus file {file} line {number} is not valid JSON ({exc.msg}); "
                                    f"give one JSON object per line with a '{text_field}' field")
            if not isinstance(row, dict):
                raise MadbenchError(f"corpus file {file} line {number} is {_a('JSON ' + _kind(row))}, not an object; "
                                    f"give one JSON object per line with a '{text_field}' field")


def check_text_values(values: Iterable, where: str, text_field: str) -> List[str]:
    """The text field's values as strings; None/empty are skipped, anything else that is not a string is refused."""
    out = []
    for row, value in enumerate(values, 1):
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise MadbenchError(f"{where}: field '{text_field}' of row {row} holds {_a(_kind(value))}, not a string; "
                                "point data.text_field at a field of plain text")
        out.append(value)
    return out


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    return type(value).__name__
